"""A highly available managed Redis on the local cluster: examples/redis-managed.yaml as `make demo` applies it,
under load through its Service while its primary is deleted and while its StatefulSet rolls, then with every
Redis pod deleted at once. Nothing may be lost: no session answers 404, no counter misses an acknowledged
increment.

The operator runs in the cluster (installed with Helm), so it can ask the Sentinels for the RedisReady
condition.
"""

from __future__ import annotations

import contextlib
import json
import re
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from e2e.fleet import EXAMPLES, condition, helm_install, job_output, mcps, start_job, wait_for, wait_ready
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
        print(redis_story(kube, namespace))
        # When pods were taken out of their Service or stopped, to read beside a load report's failure times.
        columns = "custom-columns=AT:.lastTimestamp,N:.count,OBJ:.involvedObject.name,R:.reason,MESSAGE:.message"
        events = kube.run("get", "events", "-n", namespace, "--sort-by=.lastTimestamp", "-o", columns, check=False)
        print(*[e for e in events.splitlines() if " Unhealthy " in e or " Killing " in e][-80:], sep="\n")
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


def redis_story(kube: Cluster, namespace: str) -> str:
    """For a failure's post-mortem: what each data node says its role is, the primary each Sentinel names, and
    what their start scripts and Redis logged about roles, replication and failovers."""
    said = re.compile(r"starting as|Sentinels|primary|MASTER|REPLICAOF|NOREPLICAS|switch-master|sdown|odown|failover")
    ask = {
        "data": "redis-cli -p \"$REDIS_PORT\" INFO replication | grep -E '^(role|master_host|master_link|connected)'",
        "sentinel": 'redis-cli -p "$SENTINEL_PORT" SENTINEL get-master-addr-by-name "$MASTER_NAME"',
    }
    lines = []
    for pod in kube.run("get", "pods", "-n", namespace, "-o", "name", "-l", "app.kubernetes.io/name=redis").split():
        command = ask["sentinel" if "sentinel" in pod else "data"]
        said_now = kube.run(
            "exec",
            "-n",
            namespace,
            pod,
            "--",
            "sh",
            "-c",
            f'export REDISCLI_AUTH="$REDIS_PASSWORD"; {command.replace("redis-cli", "redis-cli --no-auth-warning")}',
            check=False,
        )
        log = kube.run("logs", "-n", namespace, pod, "--tail=400", check=False)
        lines.append(f"--- {pod}: {' '.join(said_now.split())}")
        lines += [line[:200] for line in log.splitlines() if said.search(line)][-25:]
    return "\n".join(lines)


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


# Children whose deletion would take their pods with them are deleted with --cascade=orphan: the object goes,
# its pods stay, and the one the operator makes again adopts them (deleting every Redis pod at once is
# test_every_redis_pod_deleted_at_once_keeps_every_session's).
WORKLOAD_KINDS = ("Deployment", "StatefulSet")
CHILD_KINDS = "deployments,statefulsets,services,configmaps,secrets,poddisruptionbudgets,networkpolicies,hpa"
SMALL = "drift-hpa"  # a second McpServer, for the one kind demo-redis does not have: a HorizontalPodAutoscaler


def children(kube: Cluster, namespace: str, instance: str) -> list[dict[str, Any]]:
    selector = f"app.kubernetes.io/instance={instance},app.kubernetes.io/managed-by=mcp-fleet"
    return list(kube.json("get", CHILD_KINDS, "-n", namespace, "-l", selector)["items"])


def repairs(kube: Cluster, namespace: str, owner: str) -> list[str]:
    """The messages of the Repaired Events on the McpServer `owner`."""
    selector = f"involvedObject.name={owner},involvedObject.kind=McpServer,reason=Repaired"
    events = kube.json("get", "events", "-n", namespace, "--field-selector", selector)["items"]
    return [str(e.get("message", "")) for e in events]


def wait_repaired(kube: Cluster, namespace: str, owner: str, said: str) -> None:
    """Waits for a Repaired Event on `owner` whose message starts with `said` (kopf posts Events from a queue of
    its own, after the repair itself, which `timed` holds to 10 s)."""
    wait_for(f"an Event: {said}", lambda: any(m.startswith(said) for m in repairs(kube, namespace, owner)), 30)


def timed(what: str, check: Callable[[], Any], limit: float) -> float:
    """Seconds until `check` holds; fails past `limit`."""
    started = time.monotonic()
    wait_for(what, check, limit)
    return round(time.monotonic() - started, 1)


def test_every_child_deleted_or_edited_is_put_back_under_load(kube: Cluster, ha: str) -> None:
    """Every object the operator made, deleted and then edited while the McpServer serves traffic: back
    within 10 s, with a Repaired Event, and no session dropped. The scripts ConfigMap deleted together with a
    Redis pod ends with the pod running."""
    small = mcps(SMALL, "  replicas: 1\n  autoscaling: {enabled: true, minReplicas: 1, maxReplicas: 2}\n")
    kube.apply(small, ha)
    wait_ready(kube, ha, SMALL, 180)
    job = "drift-load"
    start_load(kube, ha, job, 150)
    time.sleep(10)
    owners = {NAME: children(kube, ha, NAME), SMALL: children(kube, ha, SMALL)}
    kinds = {c["kind"] for found in owners.values() for c in found}
    assert kinds >= {
        "Deployment",
        "StatefulSet",
        "Service",
        "ConfigMap",
        "Secret",
        "PodDisruptionBudget",
        "NetworkPolicy",
        "HorizontalPodAutoscaler",
    }, kinds
    took: dict[str, float] = {}
    for owner, found in owners.items():
        for child in found:
            kind, name, uid = child["kind"], child["metadata"]["name"], child["metadata"]["uid"]
            cascade = "--cascade=orphan" if kind in WORKLOAD_KINDS else "--cascade=background"
            kube.run("delete", kind, name, "-n", ha, "--wait=false", cascade)

            def made_again(kind: str = kind, name: str = name, uid: str = uid) -> bool:
                found = kube.run("get", kind, name, "-n", ha, "-o", "jsonpath={.metadata.uid}", check=False)
                return found.strip() not in ("", uid)

            took[f"delete {kind} {name}"] = timed(f"{kind} {name} made again", made_again, 10)
            wait_repaired(kube, ha, owner, f"{kind} {name} was deleted; made it again")
    for owner, found in owners.items():
        for child in found:
            kind, name = child["kind"], child["metadata"]["name"]
            kube.run("label", "--overwrite", kind, name, "-n", ha, "app.kubernetes.io/name=tampered")

            def put_back(kind: str = kind, name: str = name) -> bool:
                labels = kube.json("get", kind, name, "-n", ha)["metadata"].get("labels") or {}
                return labels.get("app.kubernetes.io/name") != "tampered"

            took[f"label {kind} {name}"] = timed(f"{kind} {name} put back", put_back, 10)
            wait_repaired(kube, ha, owner, f"{kind} {name} was changed; put back")
    # Edits of what the children do, not only of their labels.
    scripts = f"{NAME}-redis-scripts"
    edits = [
        ("configmap", scripts, {"data": {"redis-start.sh": "exit 1"}}, "{.data.redis-start\\.sh}", "exit 1"),
        ("service", NAME, {"spec": {"sessionAffinity": "ClientIP"}}, "{.spec.sessionAffinity}", "ClientIP"),
        ("pdb", f"{NAME}-redis", {"spec": {"maxUnavailable": 3}}, "{.spec.maxUnavailable}", "3"),
        ("hpa", SMALL, {"spec": {"maxReplicas": 9}}, "{.spec.maxReplicas}", "9"),
    ]
    for kind, name, patch, path, tampered in edits:
        kube.run("patch", kind, name, "-n", ha, "--type=merge", "-p", json.dumps(patch))

        def restored(kind: str = kind, name: str = name, path: str = path, tampered: str = tampered) -> bool:
            return kube.run("get", kind, name, "-n", ha, "-o", f"jsonpath={path}").strip() != tampered

        took[f"edit {kind} {name}"] = timed(f"{kind} {name} put back", restored, 10)
    print(json.dumps(took))

    # The scripts' ConfigMap and a Redis pod deleted together: the pod mounts the ConfigMap made again.
    kube.run("delete", "configmap", scripts, "-n", ha, "--wait=false")
    kube.run("delete", "pod", f"{NAME}-redis-2", "-n", ha, "--wait=false")
    kube.run("rollout", "status", "-n", ha, f"statefulset/{NAME}-redis", "--timeout=180s", timeout=200)
    pod = kube.json("get", "pod", f"{NAME}-redis-2", "-n", ha)
    assert pod["status"]["phase"] == "Running", pod["status"]
    wait_for("RedisReady", lambda: condition(kube, ha, NAME, "RedisReady") == "True", 120)

    report = job_output(kube, ha, job, 300)
    print(json.dumps(report))
    # No session or handle dropped, no acknowledged increment lost. A Service deleted and made again has a new
    # address, so a request in that moment may find no listener (a transport error, retried by the load).
    assert report["lost"] == [], report
    answered = {status for status in report["statuses"] if status.isdigit()}
    assert answered <= {"200", "202", "503"}, report["statuses"]
    assert all(count > 0 for count in report["sessions"].values()), report
    kube.run("delete", "mcps", SMALL, "-n", ha, "--wait=true")


def verified(kube: Cluster, namespace: str, name: str) -> dict[str, Any]:
    status = kube.json("get", "mcps", name, "-n", namespace).get("status") or {}
    return next((c for c in status.get("conditions", []) if c["type"] == "Verified"), {})


def probe_now(kube: Cluster, namespace: str, name: str) -> None:
    """The documented way to ask for a reconcile and a probe now."""
    value = f"mcpfleet.dev/reconcile-request={time.time()}"
    kube.run("annotate", "--overwrite", "mcps", name, "-n", namespace, value)


def test_verified_says_the_fleet_answers_mcp_across_replicas(kube: Cluster, ha: str) -> None:
    """Verified=True with the cross-pod step in its message; an app whose tool listing fails, and a pod that
    does not share sessions with the others, make it False naming the step (and the pod)."""

    def passed() -> dict[str, Any] | None:
        found = verified(kube, ha, NAME)
        return found if found.get("status") == "True" else None

    found = wait_for("Verified=True", passed, 120)
    assert "session served by each of 3 pods" in found["message"], found
    assert found["message"].startswith("mcp-fleet-demo"), found
    status = kube.json("get", "mcps", NAME, "-n", ha)["status"]
    assert status["verified"]["pods"] == 3 and status["verified"]["tools"] > 0, status["verified"]
    assert set(status["verified"]["protocolVersions"]) == {"2026-07-28", "2025-11-25"}
    header, row = kube.run("get", "mcps", NAME, "-n", ha).splitlines()[:2]
    assert row.split()[header.split().index("VERIFIED")] == "True", (header, row)

    # An app whose tool listing raises.
    kube.apply(mcps("faulty", "  replicas: 1\n  app: mcp_runtime.examples.faulty:server\n"), ha)
    wait_ready(kube, ha, "faulty", 180)
    failing = wait_for("Verified=False", lambda: verified(kube, ha, "faulty").get("status") == "False", 60)
    assert failing
    said = verified(kube, ha, "faulty")
    assert (said["reason"], said["message"].split(":")[0]) == ("ProbeFailed", "step tools/list failed"), said
    kube.run("delete", "mcps", "faulty", "-n", ha, "--wait=true")

    # A pod the Service sends traffic to, on sessions of its own (memory): the cross-pod step fails on it.
    template = kube.json("get", "deployment", NAME, "-n", ha)["spec"]["template"]
    container = template["spec"]["containers"][0]
    container["env"] = [e for e in container["env"] if not e["name"].startswith("MCP_REDIS")]
    container["env"] = [e for e in container["env"] if e["name"] != "MCP_SESSION_BACKEND"]
    container["env"].append({"name": "MCP_SESSION_BACKEND", "value": "memory"})
    labels = {k: v for k, v in template["metadata"]["labels"].items() if k != "pod-template-hash"}
    stray = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "stray", "labels": labels},
        "spec": {**template["spec"], "containers": [container]},
    }

    def refused() -> dict[str, Any] | None:
        found = verified(kube, ha, NAME)
        return found if found.get("status") == "False" else None

    # The stray pod goes whatever happens: the tests after this one share the namespace and its Service.
    kube.run("apply", "-n", ha, "-f", "-", input=json.dumps(stray))
    try:
        kube.run("wait", "-n", ha, "--for=condition=Ready", "pod/stray", "--timeout=120s", timeout=150)
        probe_now(kube, ha, NAME)
        found = wait_for("Verified=False for the stray pod", refused, 60)
        # Whichever pod the probe's session was opened on, the stray pod is the one named.
        assert found["message"].startswith("step cross-replica on pod stray failed: HTTP 404"), found
    finally:
        kube.run("delete", "pod", "stray", "-n", ha, "--wait=true")
    probe_now(kube, ha, NAME)
    wait_for("Verified=True again", passed, 60)


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
    # RedisReady is True as soon as a primary is up; it takes writes once a replica has synced
    # (min-replicas-to-write), and the server pods are ready (in the Service) again only then.
    started = time.monotonic()
    wait_ready(kube, ha, NAME, 240)
    print(f"server pods ready again {time.monotonic() - started:.1f}s after RedisReady")

    start_job(kube, ha, "ha-after", ["python3", "-c", LOAD, "check", url_of(kube, ha), json.dumps(before)])
    seen = job_output(kube, ha, "ha-after")
    print(json.dumps(seen))
    for session, acked in before["sessions"].items():
        assert seen["sessions"][session] == acked + 1, (session, acked, seen["sessions"][session])
    for handle, acked in before["handles"].items():
        assert seen["handles"][handle] == acked, (handle, acked, seen["handles"][handle])


# In a pod of the runtime image: one handshake-era session (the official client, which resumes a cut POST
# stream with GET and Last-Event-ID), `calls` long tool calls at once, each reporting progress.
LONG_CALLS = """
import asyncio, json, logging, sys, time
import httpx2
logging.basicConfig(level=logging.WARNING, stream=sys.stderr, format="%(asctime)s %(name)s %(message)s")
logging.getLogger("mcp.client.streamable_http").setLevel(logging.DEBUG)
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

async def main(url, calls, seconds):
    http = httpx2.AsyncClient(timeout=httpx2.Timeout(30, read=120))
    async with Client(streamable_http_client(url, http_client=http), mode="legacy") as client:
        before = (await client.call_tool("whoami", {})).structured_content["replica"]
        progress = {n: [] for n in range(calls)}

        async def one(n):
            async def seen(value, total, message):
                progress[n].append(value)
            result = await client.call_tool("slow", {"seconds": seconds}, progress_callback=seen)
            return result.structured_content["result"]

        print(json.dumps({"started": time.time()}), flush=True)
        results = await asyncio.gather(*(one(n) for n in range(calls)), return_exceptions=True)
        after = (await client.call_tool("whoami", {})).structured_content["replica"]
    print(json.dumps({"before": before, "after": after, "results": [str(r) for r in results], "progress": progress}))

asyncio.run(main(sys.argv[1], int(sys.argv[2]), float(sys.argv[3])))
"""


def test_long_calls_go_on_while_the_servers_roll(kube: Cluster, ha: str, tmp_path: Path) -> None:
    """Calls of 20 s while every server pod is replaced: each draining pod closes its streams at SIGTERM and
    finishes its calls (at most 20 s are left of one, within the runtime's 25 s grace, the longest a roll
    never cuts); the client resumes each stream on another pod and gets every result, once."""
    calls, seconds = 4, 20.0
    pods_before = server_pods(kube, ha)

    def template() -> dict[str, Any]:
        return dict(kube.json("get", f"deployment/{NAME}", "-n", ha)["spec"]["template"])

    before = template()
    with followed_logs(kube, ha, pods_before, tmp_path) as logs:
        roll = [{"name": "E2E_ROLL", "value": str(time.time())}]  # a new pod template: a roll
        kube.run("patch", "mcps", NAME, "-n", ha, "--type=merge", "-p", json.dumps({"spec": {"env": roll}}))
        wait_for("the roll to start", lambda: template() != before, 120)
        # The pods are replaced one after another (a new one ready, then an old one's preStop and drain):
        # the calls run while they are.
        start_job(kube, ha, "long-calls", ["python3", "-c", LONG_CALLS, url_of(kube, ha), str(calls), str(seconds)])
        report = job_output(kube, ha, "long-calls", 240)
        kube.run("rollout", "status", "-n", ha, f"deployment/{NAME}", "--timeout=240s", timeout=260)
    print(json.dumps({k: v for k, v in report.items() if k != "progress"}))
    assert report["results"] == [f"waited {seconds:g}s"] * calls, report["results"]
    for n, values in report["progress"].items():
        assert values == sorted(values) and len(values) == len(set(values)), (n, values)  # in order, once each
    assert not pods_before & server_pods(kube, ha)
    # Old pods got SIGTERM with calls running and streams open: they closed the streams (their clients resumed
    # on other pods) and finished the calls.
    drains = [
        re.search(r"draining \((\d+) requests in flight, (\d+) streams sent elsewhere", text) for text in logs.values()
    ]
    print([d.group(0) for d in drains if d])
    assert all(drains), logs
    assert sum(int(d.group(1)) for d in drains if d) >= 1 and sum(int(d.group(2)) for d in drains if d) >= 1


@contextlib.contextmanager
def followed_logs(kube: Cluster, namespace: str, pods: set[str], workdir: Path) -> Iterator[dict[str, str]]:
    """The logs of `pods` until they exit (followed, since a deleted pod's log goes with it): by pod, after."""
    logs: dict[str, str] = {}
    paths = {pod: workdir / f"{pod.split('/')[-1]}.log" for pod in pods}
    followers = []
    for pod, path in paths.items():
        with path.open("w") as out:
            command = ["kubectl", "logs", "-f", "-n", namespace, pod]
            followers.append(subprocess.Popen(command, env=kube.env, stdout=out, stderr=subprocess.STDOUT))
    try:
        yield logs
    finally:
        for follower in followers:
            try:
                follower.wait(30)  # a follower ends when its pod's container does
            except subprocess.TimeoutExpired:
                follower.kill()
        logs.update({pod: path.read_text() for pod, path in paths.items()})


def server_pods(kube: Cluster, namespace: str) -> set[str]:
    selector = f"app.kubernetes.io/instance={NAME},app.kubernetes.io/name=mcp-server"
    return set(kube.run("get", "pods", "-n", namespace, "-l", selector, "-o", "name").split())
