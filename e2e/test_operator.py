"""The operator against the real cluster: CRD, validation, children, status, scale, rollout, drift, deletion."""

from __future__ import annotations

import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from e2e.fleet import condition, host_operator, mcps, wait_for
from e2e.kube import Cluster
from mcp_operator.kube import KindNotServed, Kube

ROOT = Path(__file__).parents[1]
METRICS_PORT = 18081


@pytest.fixture(scope="module")
def operator(kube: Cluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[subprocess.Popen[bytes]]:
    metrics = ["--liveness", "http://127.0.0.1:18080/healthz", "--metrics-port", str(METRICS_PORT)]
    with host_operator(kube, tmp_path_factory.mktemp("operator"), *metrics) as process:
        yield process


def test_invalid_mcpservers_are_rejected_with_a_message(kube: Cluster, namespace: str, operator: Any) -> None:
    cases = {
        "  redis: {mode: external}\n": "redis.mode external needs redis.url, or redis.sentinels",
        "  redis: {mode: external, sentinels: ['s:26379']}\n": "sentinels and redis.sentinelMasterName go together",
        "  redis: {mode: external, url: 'redis://r:6379', highAvailability: {enabled: true}}\n": (
            "redis.highAvailability is for the managed Redis"
        ),
        "  redis: {highAvailability: {enabled: true, replicas: 1}}\n": "spec.redis.highAvailability.replicas",
        "  redis: {mode: external, sentinels: ['no-port']}\n": "spec.redis.sentinels[0]",
        "  autoscaling: {enabled: true, minReplicas: 5, maxReplicas: 2}\n": "minReplicas must not exceed",
        "  replicas: -1\n": "spec.replicas",
        "  sessions: {backend: postgres}\n": "Unsupported value",
        "  disruptionBudget: {minAvailable: 1, maxUnavailable: 1}\n": "exactly one of",
        "  expose: {hostnames: [mcp.example.test]}\n": "expose needs exactly one of gateway",
        "  expose: {hostnames: ['mcp.example.test:443'], ingress: {}}\n": "spec.expose.hostnames[0]",
        "  auth: {oauth: {issuer: 'https://id.test', resource: 'https://mcp.test/mcp#x'}}\n": (
            "must not have a fragment"
        ),
        "  auth: {oauth: {issuer: 'id.test', resource: 'https://mcp.test/mcp'}}\n": "spec.auth.oauth.issuer",
        "  auth: {oauth: {issuer: 'https://id.test'}}\n": "spec.auth.oauth.resource: Required value",
        "  auth: {oauth: {issuer: 'https://id.test', resource: 'https://mcp.test/mcp', algorithms: [HS256]}}\n": (
            "spec.auth.oauth.algorithms[0]"
        ),
    }
    for spec, message in cases.items():
        done = subprocess.run(
            ["kubectl", "apply", "-n", namespace, "-f", "-"],
            input=mcps("bad", spec),
            env=kube.env,
            capture_output=True,
            text=True,
        )
        assert done.returncode != 0, spec
        assert message in done.stderr, (spec, done.stderr)


def test_lifecycle(kube: Cluster, namespace: str, operator: Any) -> None:
    kube.apply(mcps("demo", "  replicas: 2\n"), namespace)
    wait_for("Ready", lambda: condition(kube, namespace, "demo", "Ready") == "True", 180)
    status = kube.json("get", "mcps", "demo", "-n", namespace)["status"]
    assert status["readyReplicas"] == 2 and status["url"] == f"http://demo.{namespace}.svc/mcp"
    assert condition(kube, namespace, "demo", "SessionAffinity") == "True"
    uid = kube.json("get", "mcps", "demo", "-n", namespace)["metadata"]["uid"]
    for kind in ("deployment/demo", "service/demo", "secret/demo-request-state"):
        owners = kube.json("get", kind, "-n", namespace)["metadata"]["ownerReferences"]
        assert owners[0]["uid"] == uid, kind
    assert kube.json("get", "service/demo", "-n", namespace)["spec"]["sessionAffinity"] == "ClientIP"
    columns = kube.run("get", "mcps", "-n", namespace)
    assert "READY" in columns and "BACKEND" in columns and "memory" in columns

    # kubectl scale goes through the scale subresource.
    kube.run("scale", "mcps", "demo", "-n", namespace, "--replicas=1")
    wait_for("scale down", lambda: kube.json("get", "deployment/demo", "-n", namespace)["spec"]["replicas"] == 1)

    # A spec change rolls the pods.
    before = kube.json("get", "deployment/demo", "-n", namespace)["spec"]["template"]["metadata"]["annotations"]
    kube.run("patch", "mcps", "demo", "-n", namespace, "--type=merge", "-p", '{"spec":{"sessions":{"ttlSeconds":60}}}')
    wait_for(
        "a rollout",
        lambda: (
            kube.json("get", "deployment/demo", "-n", namespace)["spec"]["template"]["metadata"]["annotations"]
            != before
        ),
    )

    # A deleted child comes back.
    kube.run("delete", "service/demo", "-n", namespace)
    wait_for("the Service back", lambda: kube.run("get", "service/demo", "-n", namespace, check=False), 60)

    # An edited child is put back.
    def image() -> str:
        pod = kube.json("get", "deployment/demo", "-n", namespace)["spec"]["template"]["spec"]
        return str(pod["containers"][0]["image"])

    original = image()
    kube.run("set", "image", "deployment/demo", "-n", namespace, "server=example.invalid/edited:1")
    wait_for("the edit reverted", lambda: image() == original, 60)

    # Switching to redis makes a managed Redis and re-renders the pods.
    kube.run(
        "patch", "mcps", "demo", "-n", namespace, "--type=merge", "-p", '{"spec":{"sessions":{"backend":"redis"}}}'
    )
    wait_for("the Redis", lambda: kube.run("get", "statefulset/demo-redis", "-n", namespace, check=False), 60)

    def redis_env() -> bool:
        container = kube.json("get", "deployment/demo", "-n", namespace)["spec"]["template"]["spec"]["containers"][0]
        return any(e["name"] == "MCP_REDIS_URL" for e in container["env"])

    wait_for("pods rendered for redis", redis_env, 60)
    wait_for("RedisReady", lambda: condition(kube, namespace, "demo", "RedisReady") == "True", 180)
    wait_for("Ready on redis", lambda: condition(kube, namespace, "demo", "Ready") == "True", 180)

    # Deleting the McpServer collects everything it made.
    kube.run("delete", "mcps", "demo", "-n", namespace)
    wait_for(
        "garbage collection",
        lambda: (
            not kube.json(
                "get",
                "deployments,statefulsets,services,secrets",
                "-n",
                namespace,
                "-l",
                "app.kubernetes.io/instance=demo",
            )["items"]
        ),
    )


def test_operator_health_and_metrics(operator: Any) -> None:
    import httpx2

    wait_for("operator /healthz", lambda: _ok("http://127.0.0.1:18080/healthz", httpx2), 30)
    assert operator.poll() is None
    metrics = httpx2.get(f"http://127.0.0.1:{METRICS_PORT}/metrics", timeout=5).text
    # The lifecycle test before this one made the operator reconcile.
    ok = [line for line in metrics.splitlines() if line.startswith('mcp_fleet_operator_reconciles_total{result="ok"}')]
    assert ok and float(ok[0].split()[-1]) > 0, metrics
    assert "mcp_fleet_operator_reconcile_duration_seconds_bucket" in metrics


def _ok(url: str, httpx2: Any) -> bool:
    try:
        return bool(httpx2.get(url, timeout=2).status_code == 200)
    except httpx2.HTTPError:
        return False


# Runs in a pod of the own-server image: one handshake-era session calling mcp-server-time's tool, every
# request on a new connection (so the Service spreads them over the replicas), then a 2026-07-28 client.
TIME_PROBE = """
import asyncio, json, sys
import httpx2
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

async def main(url, calls):
    http = httpx2.AsyncClient(limits=httpx2.Limits(max_keepalive_connections=0), timeout=30)
    zones = []
    async with Client(streamable_http_client(url, http_client=http), mode="legacy") as client:
        for _ in range(calls):
            result = await client.call_tool("get_current_time", {"timezone": "Europe/Paris"})
            zones.append(result.structured_content["timezone"])
    async with Client(url, mode="2026-07-28") as client:
        modern = (await client.call_tool("get_current_time", {"timezone": "UTC"})).structured_content["timezone"]
    print(json.dumps({"zones": zones, "modern": modern}))

asyncio.run(main(sys.argv[1], int(sys.argv[2])))
"""


def test_a_server_from_pypi_in_an_image_built_from_the_runtime(kube: Cluster, namespace: str, operator: Any) -> None:
    """examples/own-server as it is: mcp-server-time from PyPI, three replicas on Redis."""

    from e2e.fleet import apply_with_images, probe, proxy_get, wait_ready

    applied = apply_with_images(kube, namespace, ROOT / "examples" / "own-server" / "mcpserver.yaml")
    name = applied["metadata"]["name"]
    wait_ready(kube, namespace, name)
    seen = probe(kube, namespace, name, calls=12, script=TIME_PROBE, image=applied["spec"]["image"])
    assert seen["zones"] == ["Europe/Paris"] * 12 and seen["modern"] == "UTC", seen
    pods = kube.json("get", "pods", "-n", namespace, "-l", f"app.kubernetes.io/instance={name}")["items"]
    servers = [p for p in pods if p["metadata"]["labels"].get("app.kubernetes.io/component") == "server"]
    assert len(servers) == 3
    restored = 0.0
    for pod in servers:
        text = proxy_get(kube, namespace, "pods", pod["metadata"]["name"], 8000, "metrics")
        restored += sum(
            float(line.split()[-1])
            for line in text.splitlines()
            if line.startswith("mcp_runtime_sessions_restored_total ")
        )
    assert restored >= 1  # the session was served by replicas that did not open it


def test_the_operators_client_looks_kinds_up_from_many_threads_at_once(kube: Cluster) -> None:
    """The handlers run in threads, and a kind the cluster does not serve (the Gateway API's before its CRDs
    are installed) makes the official client rebuild its discovery cache: lookups from many threads at once,
    served kinds and unserved ones mixed, each get the resource or KindNotServed, and nothing else."""
    client = Kube()  # the host's kubeconfig (KUBECONFIG), as the host operator's
    kinds = [("v1", "Secret"), ("apps/v1", "Deployment"), ("nothing.example.test/v1", "Nothing"), ("v1", "Service")]
    errors: list[BaseException] = []
    served: list[str] = []

    def look(n: int) -> None:
        api_version, kind = kinds[n % len(kinds)]
        try:
            served.append(client._resource(api_version, kind).kind)
        except KindNotServed:
            pass
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=look, args=(n,)) for n in range(64)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not errors, errors[:3]
    assert sorted(set(served)) == ["Deployment", "Secret", "Service"] and len(served) == 48
