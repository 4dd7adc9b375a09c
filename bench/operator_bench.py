"""The operator under a burst: N McpServers created at once.

    e2e/cluster.sh up && python -m bench.operator_bench [--counts 100,500]

Starts `mcp-operator run` on this machine against the local cluster, applies N McpServers (replicas 0, so
the figure is the operator's work, not pods starting) in one request, and measures the time until every one
has its children (Deployment, Service, requestState Secret) and a status for its generation, then until every
one has a Verified condition (the probe ran), and the operator's peak resident memory (VmHWM). Results go to
bench/results/operator.json.
"""

from __future__ import annotations

import argparse
import json
import os
import time
import uuid
from pathlib import Path
from typing import Any

from e2e.fleet import install_crds, start_host_operator
from e2e.kube import Cluster

RESULTS = Path(__file__).parent / "results"


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def burst(kube: Cluster, count: int) -> dict[str, Any]:
    namespace = f"bench-{uuid.uuid4().hex[:6]}"
    kube.run("create", "namespace", namespace)
    docs = "\n---\n".join(
        f"apiVersion: mcpfleet.dev/v1alpha1\nkind: McpServer\nmetadata: {{name: s{i}}}\nspec: {{replicas: 0}}"
        for i in range(count)
    )
    started = time.monotonic()
    kube.run("apply", "-n", namespace, "-f", "-", input=docs, timeout=300)
    applied = time.monotonic() - started
    while True:
        servers = kube.json("get", "mcps", "-n", namespace)["items"]
        with_status = sum(
            1 for s in servers if (s.get("status") or {}).get("observedGeneration") == s["metadata"]["generation"]
        )
        deployments = len(kube.json("get", "deployments", "-n", namespace)["items"])
        services = len(kube.json("get", "services", "-n", namespace)["items"])
        secrets = len(
            kube.json("get", "secrets", "-n", namespace, "-l", "app.kubernetes.io/managed-by=mcp-fleet")["items"]
        )
        if min(with_status, deployments, services, secrets) >= count:
            break
        if time.monotonic() - started > 900:
            raise RuntimeError(f"not done after 900 s: {with_status} statuses, {deployments} deployments")
        time.sleep(1)
    elapsed = time.monotonic() - started
    # Then the Verified probe of each (with no pod, its verdict is NoReadyPods: the probe's own cost).
    while True:
        servers = kube.json("get", "mcps", "-n", namespace)["items"]
        probed = sum(
            1 for s in servers if any(c["type"] == "Verified" for c in (s.get("status") or {}).get("conditions") or [])
        )
        if probed >= count:
            break
        if time.monotonic() - started > 900:
            raise RuntimeError(f"not probed after 900 s: {probed}")
        time.sleep(1)
    verified = time.monotonic() - started
    kube.run("delete", "namespace", namespace, "--wait=false")
    return {
        "count": count,
        "apply_seconds": applied,
        "all_reconciled_seconds": elapsed,
        "all_verified_seconds": verified,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--counts", default="100,500")
    args = parser.parse_args()
    kube = Cluster()
    install_crds(kube)
    operator = start_host_operator(
        kube, Path("/tmp/bench-operator.log"), "--standalone", "--liveness", "http://127.0.0.1:18081/healthz"
    )
    results: dict[str, Any] = {
        "machine": f"{os.uname().nodename}, {len(os.sched_getaffinity(0))} cores",
        "command": "python -m bench.operator_bench --counts " + args.counts,
        "started": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
        "runs": [],
    }
    try:
        time.sleep(5)
        for count in [int(c) for c in args.counts.split(",")]:
            run = burst(kube, count)
            run["operator_peak_rss_mb"] = peak_rss_mb(operator.pid)
            results["runs"].append(run)
            print(run, flush=True)
            time.sleep(10)
    finally:
        operator.terminate()
        operator.wait(30)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "operator.json").write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
