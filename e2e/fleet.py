"""What the chart test and `make demo` share: installing the chart, waiting for McpServers, and talking MCP
to them from inside the cluster with the official client."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml

from e2e import target
from e2e.kube import Cluster

ROOT = Path(__file__).parents[1]
CHART = ROOT / "charts" / "mcp-fleet"
EXAMPLES = ROOT / "examples"
RUNTIME_IMAGE = target.image("runtime")
# What the API server says when RBAC refuses a request. A namespace being deleted also answers "forbidden"
# ("unable to create new content in namespace ... because it is being terminated"); that is no RBAC gap.
RBAC_REFUSAL = re.compile(r'forbidden: User "[^"]*" cannot', re.IGNORECASE)


def wait_for(what: str, check: Callable[[], Any], timeout: float = 120) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(1)


def mcps(name: str, spec: str) -> str:
    return f"apiVersion: mcpfleet.dev/v1alpha1\nkind: McpServer\nmetadata: {{name: {name}}}\nspec:\n{spec}"


def condition(kube: Cluster, namespace: str, name: str, kind: str) -> str | None:
    obj = kube.json("get", "mcps", name, "-n", namespace)
    for c in (obj.get("status") or {}).get("conditions") or []:
        if c["type"] == kind:
            return str(c["status"])
    return None


def install_crds(kube: Cluster) -> None:
    """The CRDs from crds/ (McpServer, kopf's peering resources), for an operator run outside the chart."""
    kube.run("apply", "--server-side", "--force-conflicts", "-f", str(ROOT / "crds"))
    kube.run("wait", "--for=condition=Established", "-f", str(ROOT / "crds"), "--timeout=60s")


def start_host_operator(
    kube: Cluster, log: Path, *args: str, kubeconfig: Path | None = None
) -> subprocess.Popen[bytes]:
    """`mcp-operator run ARGS` on this machine against the cluster, its output in `log`."""
    env = {**kube.env, **target.operator_env(), "PYTHONUNBUFFERED": "1"}
    if kubeconfig is not None:
        env["KUBECONFIG"] = str(kubeconfig)
    with log.open("wb") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "mcp_operator.cli", "run", *args], env=env, stdout=out, stderr=subprocess.STDOUT
        )


@contextmanager
def host_operator(kube: Cluster, workdir: Path, *args: str) -> Iterator[subprocess.Popen[bytes]]:
    """`mcp-operator run --standalone ARGS` on this machine with the chart's RBAC (the CRDs applied first);
    stopped on exit, when its log must show nothing refused under that ClusterRole."""
    install_crds(kube)
    config = operator_kubeconfig(kube, workdir / "kubeconfig")
    process = start_host_operator(kube, workdir / "operator.log", "--standalone", *args, kubeconfig=config)
    try:
        yield process
    finally:
        process.terminate()
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()
    refused = rbac_refusals((workdir / "operator.log").read_text())
    assert refused == [], refused


def rbac_refusals(log: str) -> list[str]:
    """The lines of an operator's log where RBAC refused it something."""
    return [line for line in log.splitlines() if RBAC_REFUSAL.search(line)]


def wait_ready(kube: Cluster, namespace: str, name: str, timeout: float = 300) -> None:
    wait_for(f"McpServer {name} Ready", lambda: condition(kube, namespace, name, "Ready") == "True", timeout)


def helm_install(kube: Cluster, release: str, namespace: str, values: dict[str, Any], workdir: Path) -> str:
    """`helm upgrade --install` (install the first time, upgrade after), waiting for the operator's rollout. The
    CRDs are applied first, as the README says to on an upgrade (Helm installs them only the first time)."""
    install_crds(kube)
    values_file = workdir / f"{release}-values.yaml"
    values_file.write_text(yaml.safe_dump(target.with_values(values)))
    return kube.helm(
        "upgrade",
        "--install",
        release,
        str(CHART),
        "-n",
        namespace,
        "--create-namespace",
        "-f",
        str(values_file),
        "--wait",
        "--timeout=180s",
    )


def proxy_get(kube: Cluster, namespace: str, kind: str, name: str, port: int, path: str) -> str:
    """GET a pod's or Service's HTTP endpoint through the API server (no route from this machine needed)."""
    return kube.run("get", "--raw", f"/api/v1/namespaces/{namespace}/{kind}/{name}:{port}/proxy/{path.lstrip('/')}")


def apply_with_images(kube: Cluster, namespace: str, manifest: Path) -> dict[str, Any]:
    """Apply an McpServer manifest whose spec.image names one of the project's images (docker.io/mcp-fleet/...),
    pointed at where this cluster gets them; returns the manifest as applied."""
    body = yaml.safe_load(manifest.read_text())
    name_tag = body["spec"]["image"].rsplit("/", 1)[-1]
    body["spec"]["image"] = target.image(*name_tag.split(":", 1))
    kube.run("apply", "-n", namespace, "-f", "-", input=json.dumps(body))
    return dict(body)


def examples(kube: Cluster, namespace: str) -> list[str]:
    """Applies examples/ as it is; returns the McpServers' names."""
    kube.run("apply", "-n", namespace, "-f", str(EXAMPLES))
    return [yaml.safe_load(p.read_text())["metadata"]["name"] for p in sorted(EXAMPLES.glob("*.yaml"))]


# Runs in a pod of the runtime image (which has the official client): one handshake-era session whose
# requests each open a new connection, so the Service spreads them over the replicas, then a 2026-07-28
# client.
PROBE = """
import asyncio, json, sys
import httpx2
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

async def main(url, calls):
    http = httpx2.AsyncClient(limits=httpx2.Limits(max_keepalive_connections=0), timeout=30)
    replicas, counts = [], []
    async with Client(streamable_http_client(url, http_client=http), mode="legacy") as client:
        for _ in range(calls):
            replicas.append((await client.call_tool("whoami", {})).structured_content["replica"])
            counts.append((await client.call_tool("session_increment", {})).structured_content["result"])
    async with Client(url, mode="2026-07-28") as client:
        modern = (await client.call_tool("add", {"a": 2, "b": 3})).structured_content["result"]
    print(json.dumps({"replicas": replicas, "counts": counts, "modern_add": modern}))

asyncio.run(main(sys.argv[1], int(sys.argv[2])))
"""


def start_job(kube: Cluster, namespace: str, job: str, command: list[str], image: str | None = None) -> None:
    """A Job of one pod of the runtime image (which has the official client) running `command`."""
    manifest = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": job},
        "spec": {
            "backoffLimit": 0,
            "ttlSecondsAfterFinished": 600,
            "template": {
                "spec": {
                    "restartPolicy": "Never",
                    "securityContext": {"runAsNonRoot": True, "runAsUser": 65532},
                    "containers": [
                        {
                            "name": "probe",
                            "image": image or RUNTIME_IMAGE,
                            "imagePullPolicy": target.PULL_POLICY,
                            "command": command,
                        }
                    ],
                }
            },
        },
    }
    kube.run("delete", "job", job, "-n", namespace, "--ignore-not-found", "--wait=true")
    kube.run("apply", "-n", namespace, "-f", "-", input=json.dumps(manifest))


def job_output(kube: Cluster, namespace: str, job: str, timeout: float = 120) -> dict[str, Any]:
    """The JSON object a Job printed last, once it completed."""
    done = kube.run(
        "wait",
        "-n",
        namespace,
        "--for=condition=Complete",
        f"job/{job}",
        f"--timeout={int(timeout)}s",
        check=False,
        timeout=timeout + 30,
    )
    logs = kube.run("logs", "-n", namespace, f"job/{job}", check=False)
    assert done, f"the job {job} did not complete: {logs}"
    # The last line that is a JSON object: the job's stderr (the client's own log lines) reaches the log
    # through a pipe of its own, so a line logged before the report was printed may come after it.
    for line in reversed(logs.strip().splitlines()):
        try:
            found = json.loads(line)
        except ValueError:
            continue
        if isinstance(found, dict):
            return found
    raise AssertionError(f"the job {job} printed no JSON object: {logs}")


def probe(
    kube: Cluster, namespace: str, name: str, calls: int = 15, *, script: str = PROBE, image: str | None = None
) -> dict[str, Any]:
    """Talks MCP to the McpServer `name` through its Service, from a pod; returns what the probe saw."""
    url = kube.json("get", "mcps", name, "-n", namespace)["status"]["url"]
    job = f"probe-{name}"
    start_job(kube, namespace, job, ["python3", "-c", script, url, str(calls)], image)
    return job_output(kube, namespace, job)


HOST_OPERATOR = "host-operator"  # the Helm release name the chart's RBAC is rendered with
HOST_OPERATOR_NAMESPACE = "mcp-fleet-e2e"


def operator_kubeconfig(kube: Cluster, path: Path) -> Path:
    """A kubeconfig of the operator's ServiceAccount, under exactly the RBAC the chart renders (RBAC proof)."""
    kube.run("create", "namespace", HOST_OPERATOR_NAMESPACE, check=False)
    rbac = kube.helm(
        "template",
        HOST_OPERATOR,
        str(Path(__file__).parents[1] / "charts" / "mcp-fleet"),
        "-n",
        HOST_OPERATOR_NAMESPACE,
        "--show-only",
        "templates/serviceaccount.yaml",
        "--show-only",
        "templates/rbac.yaml",
    )
    kube.run("apply", "-f", "-", input=rbac)
    account = f"{HOST_OPERATOR}-mcp-fleet"
    token = kube.run("create", "token", account, "-n", HOST_OPERATOR_NAMESPACE, "--duration=2h").strip()
    admin = yaml.safe_load(Path(kube.env["KUBECONFIG"]).read_text())
    cluster = admin["clusters"][0]
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [cluster],
                "users": [{"name": "operator", "user": {"token": token}}],
                "contexts": [{"name": "operator", "context": {"cluster": cluster["name"], "user": "operator"}}],
                "current-context": "operator",
            }
        )
    )
    return path
