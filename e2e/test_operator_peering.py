"""Several operator replicas are safe: one works, the others stand by and take over when it dies."""

from __future__ import annotations

import signal
import subprocess
from pathlib import Path

from e2e.fleet import (
    condition,
    install_crds,
    mcps,
    operator_kubeconfig,
    rbac_refusals,
    start_host_operator,
    wait_for,
)
from e2e.kube import Cluster


def start(
    kube: Cluster, kubeconfig: Path, log: Path, peering: str, priority: int, port: int
) -> subprocess.Popen[bytes]:
    return start_host_operator(
        kube,
        log,
        "--peering",
        peering,
        "--priority",
        str(priority),
        "--liveness",
        f"http://127.0.0.1:{port}/healthz",
        "--metrics-port",
        "0",
        kubeconfig=kubeconfig,
    )


def paused(log: Path) -> bool:
    """Whether the operator writing `log` is paused now: it starts paused, and may resume for a moment before
    it sees a peer of higher priority, then pauses again."""
    events = [line for line in log.read_text().splitlines() if "Resuming operations" in line or "Pausing" in line]
    return not events or "Pausing" in events[-1]


def test_standby_takes_over(kube: Cluster, namespace: str, tmp_path: Path) -> None:
    install_crds(kube)
    # A peering of the test's own (deleted at the end): the chart's default name stays free for a release that
    # is installed in this cluster later (`make demo` after `make e2e` on a cluster that stays).
    peering = f"e2e-{namespace}"
    kube.run(
        "apply", "-f", "-", input=f"apiVersion: kopf.dev/v1\nkind: ClusterKopfPeering\nmetadata: {{name: {peering}}}\n"
    )
    kubeconfig = operator_kubeconfig(kube, tmp_path / "kubeconfig")
    high_log, low_log = tmp_path / "high.log", tmp_path / "low.log"
    high = start(kube, kubeconfig, high_log, peering, 200, 18090)
    low = start(kube, kubeconfig, low_log, peering, 100, 18091)
    try:
        # Both start paused; the one with the higher priority resumes, the other ends paused.
        wait_for("the active replica to resume", lambda: "Resuming operations" in high_log.read_text(), 60)
        wait_for("the standby to be paused", lambda: paused(low_log), 60)
        kube.apply(mcps("first", "  replicas: 1\n"), namespace)
        wait_for("the first Ready", lambda: condition(kube, namespace, "first", "Ready") == "True", 180)
        assert paused(low_log)  # the standby stayed paused
        assert "first" not in low_log.read_text()

        high.send_signal(signal.SIGKILL)
        high.wait(10)
        kube.apply(mcps("second", "  replicas: 1\n"), namespace)
        wait_for(
            "the second Ready after a takeover", lambda: condition(kube, namespace, "second", "Ready") == "True", 240
        )
        assert not paused(low_log)
    finally:
        for process in (high, low):
            if process.poll() is None:
                process.terminate()
                process.wait(20)
        kube.run("delete", "clusterkopfpeering", peering, "--ignore-not-found")
    assert rbac_refusals(high_log.read_text() + low_log.read_text()) == []
