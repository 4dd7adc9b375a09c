"""A highly available managed Redis on the local cluster: examples/redis-managed.yaml as `make demo` applies it,
under load through its Service while its primary is deleted and while its StatefulSet rolls, then with every
Redis pod deleted at once. Nothing may be lost: no session answers 404, no counter misses an acknowledged
increment.

The operator runs in the cluster (installed with Helm), so it can ask the Sentinels for the RedisReady
condition.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from e2e.fleet import EXAMPLES, condition, helm_install, job_output, start_job, wait_for, wait_ready
from e2e.kube import Cluster

RELEASE = "ha-e2e"
RELEASE_NAMESPACE = "mcp-fleet-ha-e2e"
NAME = "demo-redis"
LOAD = (Path(__file__).parent / "ha_load.py").read_text()


@pytest.fixture(scope="module")
def ha(kube: Cluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The operator installed with Helm, and examples/redis-managed.yaml applied and Ready; yields the namespace."""
    helm_install(kube, RELEASE, RELEASE_NAMESPACE, {}, tmp_path_factory.mktemp("helm"))
    namespace = f"e2e-ha-{uuid.uuid4().hex[:6]}"
    kube.run("create", "namespace", namespace)
    try:
        kube.run("apply", "-n", namespace, "-f", str(EXAMPLES / "redis-managed.yaml"))
        wait_ready(kube, namespace, NAME, 420)
        yield namespace
    finally:
        # The server pods' errors, kept for a failure's post-mortem (the namespace goes next).
        logs = kube.run(
            "logs", "-n", namespace, "-l", "app.kubernetes.io/component=server", "--tail=-1", "--prefix", check=False
        )
        kept = tmp_path_factory.mktemp("logs") / "servers.log"
        kept.write_text(logs)
        errors = [line for line in logs.splitlines() if '"level": "error"' in line]
        print(f"server logs in {kept}: {len(errors)} error lines", *errors[:5], sep="\n")
        kube.run("delete", "namespace", namespace, "--wait=true", "--timeout=180s", check=False, timeout=240)
        kube.helm("uninstall", RELEASE, "-n", RELEASE_NAMESPACE, "--wait", check=False)


def sentinel_primary(kube: Cluster, namespace: str) -> str:
    """The primary's host as Sentinel 0 names it."""
    out = kube.run(
        "exec",
        "-n",
        namespace,
        f"{NAME}-redis-sentinel-0",
        "--",
        "sh",
        "-c",
        # The port and the master name from the Sentinel container's environment, which the operator sets.
        'REDISCLI_AUTH="$REDIS_PASSWORD" redis-cli --no-auth-warning -p "$SENTINEL_PORT" '
        'SENTINEL get-master-addr-by-name "$MASTER_NAME"',
        check=False,
    )
    return out.splitlines()[0] if out.strip() else ""


def redis_ready(kube: Cluster, namespace: str) -> dict[str, Any]:
    status = kube.json("get", "mcps", NAME, "-n", namespace).get("status") or {}
    return next((c for c in status.get("conditions", []) if c["type"] == "RedisReady"), {})


def start_load(kube: Cluster, namespace: str, job: str, seconds: int) -> None:
    url = kube.json("get", "mcps", NAME, "-n", namespace)["status"]["url"]
    start_job(kube, namespace, job, ["python3", "-c", LOAD, "load", url, str(seconds)])


def assert_nothing_lost(report: dict[str, Any]) -> None:
    print(json.dumps(report))
    assert report["lost"] == [], report
    statuses = set(report["statuses"])
    assert statuses <= {"200", "202", "503"}, report["statuses"]  # no 500, no 404, no cut connection
    assert all(count > 0 for count in report["sessions"].values()), report
    assert all(count > 0 for count in report["handles"].values()), report


def test_the_example_runs_redis_highly_available_and_persistent(kube: Cluster, ha: str) -> None:
    sts = kube.json("get", "statefulset", f"{NAME}-redis", "-n", ha)
    assert sts["spec"]["replicas"] == 3 and sts["spec"]["volumeClaimTemplates"]
    assert kube.json("get", "statefulset", f"{NAME}-redis-sentinel", "-n", ha)["spec"]["replicas"] == 3
    claims = kube.json("get", "pvc", "-n", ha)["items"]
    assert len(claims) == 3 and all(c["status"]["phase"] == "Bound" for c in claims)
    assert kube.json("get", "pdb", f"{NAME}-redis", "-n", ha)["spec"]["maxUnavailable"] == 1

    def in_sync() -> dict[str, Any] | None:
        found = redis_ready(kube, ha)
        return found if "2 of 2 replicas in sync" in found.get("message", "") else None

    found = wait_for("RedisReady naming the primary and 2 replicas in sync", in_sync, 180)
    assert found["status"] == "True" and found["message"].startswith(f"primary {NAME}-redis-")
    assert "persistence on" in found["message"], found


def test_deleting_the_primary_and_rolling_redis_under_load_lose_nothing(kube: Cluster, ha: str) -> None:
    job = "ha-load"
    start_load(kube, ha, job, 240)
    time.sleep(25)

    # The primary's pod is deleted (a node drain, an eviction, an OOM kill).
    old = sentinel_primary(kube, ha)
    assert old.startswith(f"{NAME}-redis-"), old
    kube.run("delete", "pod", "-n", ha, old.split(".")[0], "--wait=false")
    wait_for("a new primary", lambda: sentinel_primary(kube, ha) not in ("", old), 90)
    kube.run("rollout", "status", "-n", ha, f"statefulset/{NAME}-redis", "--timeout=180s", timeout=200)
    time.sleep(10)

    # A configuration change rolls every Redis pod, the primary among them.
    resources = {"requests": {"cpu": "60m", "memory": "32Mi"}, "limits": {"memory": "160Mi"}}
    patch = {"spec": {"redis": {"resources": resources}}}
    kube.run("patch", "mcps", NAME, "-n", ha, "--type=merge", "-p", json.dumps(patch))

    def rolled() -> bool:
        sts = kube.json("get", "statefulset", f"{NAME}-redis", "-n", ha)
        status = sts.get("status") or {}
        return (
            status.get("updateRevision") == status.get("currentRevision")
            and status.get("updatedReplicas") == 3
            and status.get("readyReplicas") == 3
            and sts["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]["memory"] == "160Mi"
        )

    wait_for("the Redis StatefulSet rolled", rolled, 240)
    report = job_output(kube, ha, job, 300)
    assert_nothing_lost(report)

    # Every session and handle still holds what was acknowledged (no increment of an acknowledged count lost).
    start_job(kube, ha, "ha-check", ["python3", "-c", LOAD, "check", url_of(kube, ha), json.dumps(report)])
    seen = job_output(kube, ha, "ha-check")
    for session, acked in report["sessions"].items():
        assert seen["sessions"][session] >= acked + 1, (session, acked, seen)
    for handle, acked in report["handles"].items():
        assert seen["handles"][handle] >= acked, (handle, acked, seen)


def url_of(kube: Cluster, namespace: str) -> str:
    return str(kube.json("get", "mcps", NAME, "-n", namespace)["status"]["url"])


def test_every_redis_pod_deleted_at_once_keeps_every_session(kube: Cluster, ha: str) -> None:
    """Persistence: with the primary, the replicas and the Sentinels all gone, the append-only files bring the
    sessions back."""
    job = "ha-before"
    start_load(kube, ha, job, 5)
    before = job_output(kube, ha, job, 180)
    assert_nothing_lost(before)
    time.sleep(2)  # appendfsync everysec: the last second reaches the disk

    kube.run("delete", "pod", "-n", ha, "-l", f"app.kubernetes.io/instance={NAME},app.kubernetes.io/name=redis")
    for sts in (f"{NAME}-redis", f"{NAME}-redis-sentinel"):
        kube.run("rollout", "status", "-n", ha, f"statefulset/{sts}", "--timeout=240s", timeout=260)
    wait_for("a primary again", lambda: sentinel_primary(kube, ha).startswith(f"{NAME}-redis-"), 120)
    wait_for("RedisReady", lambda: condition(kube, ha, NAME, "RedisReady") == "True", 120)

    start_job(kube, ha, "ha-after", ["python3", "-c", LOAD, "check", url_of(kube, ha), json.dumps(before)])
    seen = job_output(kube, ha, "ha-after")
    print(json.dumps(seen))
    for session, acked in before["sessions"].items():
        assert seen["sessions"][session] == acked + 1, (session, acked, seen["sessions"][session])
    for handle, acked in before["handles"].items():
        assert seen["handles"][handle] == acked, (handle, acked, seen["handles"][handle])
