"""An McpServer exposed through a real Gateway (Traefik's Gateway API provider, e2e/gateway/install.sh): an MCP
client outside the cluster reaches it through the gateway's address with the hostname in Host, with no
hand-set allowed hosts; a hostname the spec does not name is refused by the server (421); the HTTPRoute is
put back when deleted."""

from __future__ import annotations

import json
import socket
import subprocess
import time
from collections.abc import Iterator
from functools import partial
from pathlib import Path

import anyio
import httpx2
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from e2e import target
from e2e.fleet import condition, host_operator, mcps, wait_for, wait_ready
from e2e.kube import Cluster
from tests.support.procs import free_port

INSTALL = Path(__file__).parent / "gateway" / "install.sh"
HOST = "mcp.e2e.test"
EXPOSE = (
    "  replicas: 2\n"
    "  sessions: {backend: redis}\n"
    "  expose:\n"
    f"    hostnames: [{HOST}]\n"
    "    gateway:\n"
    "      parentRefs: [{name: mcp-fleet, namespace: mcp-fleet-gateway}]\n"
)


@pytest.fixture(scope="module")
def gateway(kube: Cluster) -> Iterator[str]:
    """Traefik and the Gateway installed (built and cached the first time); the address this machine reaches it
    at: its Service's IP:port on the local cluster (kube-proxy runs on this machine), else a port-forward to
    that Service (a TCP tunnel: the Host header goes through unchanged)."""
    subprocess.run(["bash", str(INSTALL)], env=kube.env, check=True, timeout=1800)
    done = subprocess.run(["bash", str(INSTALL), "address"], env=kube.env, check=True, capture_output=True, text=True)
    address = done.stdout.strip()
    if target.HOST_REACHES_PODS:
        yield address
        return
    local = free_port()
    forward = subprocess.Popen(
        [
            "kubectl",
            "port-forward",
            "-n",
            "mcp-fleet-gateway",
            "service/traefik",
            f"{local}:{address.rsplit(':', 1)[1]}",
        ],
        env=kube.env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for("the port-forward to the gateway", lambda: reachable("127.0.0.1", local), 30)
        yield f"127.0.0.1:{local}"
    finally:
        forward.terminate()
        forward.wait(10)


def reachable(host: str, port: int) -> bool:
    try:
        socket.create_connection((host, port), timeout=1).close()
    except OSError:
        return False
    return True


@pytest.fixture(scope="module")
def operator(kube: Cluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[subprocess.Popen[bytes]]:
    with host_operator(kube, tmp_path_factory.mktemp("operator")) as process:
        yield process


async def add_through(address: str, host: str, mode: str) -> object:
    # (trust_env off: straight to the gateway, never through a proxy this machine's environment names)
    async with httpx2.AsyncClient(headers={"Host": host}, timeout=30, trust_env=False) as http:
        transport = streamable_http_client(f"http://{address}/mcp", http_client=http)
        async with Client(transport, mode=mode) as client:  # type: ignore[arg-type]
            result = await client.call_tool("add", {"a": 2, "b": 3})
            return result.structured_content


def test_a_server_exposed_through_the_gateway_answers_mcp(
    kube: Cluster, namespace: str, operator: object, gateway: str
) -> None:
    kube.apply(mcps("exposed", EXPOSE), namespace)
    wait_ready(kube, namespace, "exposed", 300)
    wait_for("Exposed=True", lambda: condition(kube, namespace, "exposed", "Exposed") == "True", 60)
    status = kube.json("get", "mcps", "exposed", "-n", namespace)["status"]
    assert status["externalUrl"] == f"http://{HOST}/mcp"
    exposed = next(c for c in status["conditions"] if c["type"] == "Exposed")
    assert exposed["message"] == f"http://{HOST}/mcp through Gateway mcp-fleet", exposed
    env = kube.json("get", "deployment", "exposed", "-n", namespace)["spec"]["template"]["spec"]["containers"][0]
    hosts = next(e["value"] for e in env["env"] if e["name"] == "MCP_ALLOWED_HOSTS")
    assert HOST in hosts.split(",")

    # The official client, in both eras, through the gateway's address with the hostname in Host. Traefik
    # marks the route Accepted a moment before its routing table has the Service's endpoints: retried briefly.
    for mode in ("legacy", "2026-07-28"):
        wait_for(f"add through the gateway ({mode})", partial(answers, gateway, mode), 60)

    # A hostname the spec does not name, routed to the Service by hand: the server's guard refuses it.
    route = {
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "HTTPRoute",
        "metadata": {"name": "by-hand"},
        "spec": {
            "parentRefs": [{"name": "mcp-fleet", "namespace": "mcp-fleet-gateway"}],
            "hostnames": ["other.e2e.test"],
            "rules": [{"backendRefs": [{"name": "exposed", "port": 80}]}],
        },
    }
    kube.run("apply", "-n", namespace, "-f", "-", input=json.dumps(route))
    body = {"jsonrpc": "2.0", "id": 1, "method": "ping"}
    headers = {"Host": "other.e2e.test", "Accept": "application/json, text/event-stream"}

    def refused() -> int | None:
        status = httpx2.post(
            f"http://{gateway}/mcp", json=body, headers=headers, timeout=10, trust_env=False
        ).status_code
        return status if status != 404 else None  # 404: Traefik has not taken the new route yet

    assert wait_for("the route by hand", refused, 60) == 421
    # No route at all for a hostname: the gateway's own 404.
    unknown = httpx2.post(
        f"http://{gateway}/mcp", json=body, headers={**headers, "Host": "nope.e2e.test"}, timeout=10, trust_env=False
    )
    assert unknown.status_code == 404

    # The HTTPRoute is the McpServer's: deleted, it comes back and serves again.
    uid = kube.json("get", "httproute", "exposed", "-n", namespace)["metadata"]["uid"]
    kube.run("delete", "httproute", "exposed", "-n", namespace)
    started = time.monotonic()
    wait_for(
        "the HTTPRoute made again",
        lambda: (
            kube.run("get", "httproute", "exposed", "-n", namespace, "-o", "jsonpath={.metadata.uid}", check=False)
            not in ("", uid)
        ),
        10,
    )
    print(f"HTTPRoute made again in {time.monotonic() - started:.1f}s")
    wait_for("the client through the gateway again", lambda: answers(gateway, "legacy"), 60)


def answers(gateway: str, mode: str) -> bool:
    """Whether `add` through the gateway gives 5; False while the gateway has no route to a ready pod yet (its
    404 or 503, which the client reports as an error)."""
    try:
        return anyio.run(add_through, gateway, HOST, mode) == {"result": 5}
    except Exception as error:
        print(f"through the gateway ({mode}): {error!r}")
        return False


def test_expose_reads_well_in_kubectl_explain(kube: Cluster, operator: object) -> None:
    explained = kube.run("explain", "mcps.spec.expose")
    for words in ("hostnames", "gateway", "ingress", "DNS-rebinding guard", "external URL"):
        assert words in explained, explained
    assert "tlsSecretName" in kube.run("explain", "mcps.spec.expose.ingress")
