"""`make demo`: the operator installed with Helm on the local cluster, the examples applied as they are, and
MCP traffic from inside the cluster showing one session served by every replica.

Run after `e2e/cluster.sh up` and the images are loaded (the Makefile does both). Leaves everything running;
`make demo-down` takes the cluster down.
"""

from __future__ import annotations

import os
import sys
import tempfile
from collections import Counter
from pathlib import Path

from e2e.fleet import examples, helm_install, probe, wait_ready
from e2e.kube import Cluster

RELEASE = "mcp-fleet"
RELEASE_NAMESPACE = "mcp-fleet-system"
NAMESPACE = "mcp-demo"


def say(text: str) -> None:
    print(f"[demo] {text}", flush=True)


def main() -> int:
    kube = Cluster()
    say(f"helm upgrade --install {RELEASE} charts/mcp-fleet -n {RELEASE_NAMESPACE} --create-namespace --wait")
    with tempfile.TemporaryDirectory() as workdir:
        helm_install(kube, RELEASE, RELEASE_NAMESPACE, {}, Path(workdir))
    print(kube.run("get", "deployment", "-n", RELEASE_NAMESPACE, "-l", f"app.kubernetes.io/instance={RELEASE}"))

    kube.run("create", "namespace", NAMESPACE, check=False)
    say(f"kubectl apply -n {NAMESPACE} -f examples/")
    names = examples(kube, NAMESPACE)
    for name in names:
        wait_ready(kube, NAMESPACE, name)
    print(kube.run("get", "mcps", "-n", NAMESPACE))
    print(kube.run("get", "pods", "-n", NAMESPACE, "-o", "wide"))

    say("an MCP client in a pod: one handshake-era session, every request on a new connection through the Service")
    seen = probe(kube, NAMESPACE, "demo-redis", calls=15)
    for replica, count in zip(seen["replicas"], seen["counts"], strict=True):
        say(f"  whoami -> {replica:<34} session_increment -> {count}")
    spread = Counter(seen["replicas"])
    say(f"  {len(spread)} replicas served the one session: {dict(spread)}")
    say(f"  a 2026-07-28 client (no session): add(2, 3) -> {seen['modern_add']}")
    if seen["counts"] != list(range(1, len(seen["counts"]) + 1)):
        say("the session's counter did not count up across replicas")
        return 1

    say("done; the cluster keeps running. Try it from this machine:")
    cluster = os.environ.get("MCP_FLEET_CLUSTER", "local")
    print(
        f"""
  eval "$(CLUSTER={cluster} bash e2e/target.sh env)"     # KUBECONFIG, and kubectl and helm on PATH
  kubectl get mcps -n {NAMESPACE}
  kubectl port-forward -n {NAMESPACE} service/demo-redis 8000:80 &
  .venv/bin/python -c 'import asyncio; from mcp import Client
async def main():
    async with Client("http://localhost:8000/mcp", mode="legacy") as c:
        print((await c.call_tool("whoami", {{}})).structured_content)
asyncio.run(main())'

  make demo-down CLUSTER={cluster}    # stop the cluster
"""
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
