"""The local cluster works: a node, pods of a locally built image, Services, DNS, garbage collection."""

from __future__ import annotations

import time

import anyio
import httpx2
import pytest
from mcp import Client

from e2e import target
from e2e.fleet import PROBE, job_output, start_job
from e2e.kube import Cluster

pytestmark = pytest.mark.cluster_smoke  # first (e2e/conftest.py)

RUNTIME_IMAGE = target.image("runtime")
PULL = target.PULL_POLICY


def test_every_node_is_ready(kube: Cluster) -> None:
    """One node on the local cluster, two on kind (e2e/kind/kind.yaml)."""
    nodes = kube.json("get", "nodes")["items"]
    assert len(nodes) == (2 if target.CLUSTER == "kind" else 1) or target.CLUSTER == "current", nodes
    for node in nodes:
        ready = [c for c in node["status"]["conditions"] if c["type"] == "Ready"]
        assert ready and ready[0]["status"] == "True", (node["metadata"]["name"], ready)


DEPLOYMENT = f"""
apiVersion: apps/v1
kind: Deployment
metadata: {{name: smoke, labels: {{app: smoke}}}}
spec:
  replicas: 2
  selector: {{matchLabels: {{app: smoke}}}}
  template:
    metadata: {{labels: {{app: smoke}}}}
    spec:
      containers:
      - name: runtime
        image: {RUNTIME_IMAGE}
        imagePullPolicy: {PULL}
        env: [{{name: MCP_ALLOWED_HOSTS, value: "*"}}]
        ports: [{{containerPort: 8000}}]
        readinessProbe: {{httpGet: {{path: /readyz, port: 8000}}, periodSeconds: 1}}
---
apiVersion: v1
kind: Service
metadata: {{name: smoke}}
spec:
  selector: {{app: smoke}}
  sessionAffinity: ClientIP  # memory sessions on two replicas: keep a client on one (what the operator will do)
  ports: [{{port: 8000, targetPort: 8000}}]
"""


def probe_job(namespace: str) -> str:
    url = f"http://smoke.{namespace}.svc.cluster.local:8000/readyz"
    fetch = f"import urllib.request; print(urllib.request.urlopen('{url}', timeout=10).read().decode())"
    return f"""
apiVersion: batch/v1
kind: Job
metadata: {{name: probe}}
spec:
  backoffLimit: 0
  template:
    spec:
      restartPolicy: Never
      containers:
      - name: probe
        image: {RUNTIME_IMAGE}
        imagePullPolicy: {PULL}
        command: ["python3", "-c", "{fetch}"]
"""


async def test_deployment_service_dns_and_garbage_collection(kube: Cluster, namespace: str) -> None:
    kube.apply(DEPLOYMENT, namespace)
    kube.run("rollout", "status", "-n", namespace, "deployment/smoke", "--timeout=120s", timeout=150)

    # The Service answers through the API server (any cluster), and from the host where the host reaches
    # Service addresses (the local cluster), MCP included.
    proxy = f"/api/v1/namespaces/{namespace}/services/smoke:8000/proxy/healthz"
    assert '"status":"ok"' in kube.run("get", "--raw", proxy).replace(" ", ""), "healthz through the API server"
    if target.HOST_REACHES_PODS:
        ip = kube.json("get", "service", "smoke", "-n", namespace)["spec"]["clusterIP"]
        deadline = time.monotonic() + 30  # kube-proxy programs the Service's rules a moment after it is ready
        while True:
            try:
                health = httpx2.get(f"http://{ip}:8000/healthz", timeout=5)
                assert health.status_code == 200, (health.status_code, health.text)
                break
            except httpx2.ConnectError:
                assert time.monotonic() < deadline, "the Service's ClusterIP never answered from the host"
                await anyio.sleep(0.5)
        async with Client(f"http://{ip}:8000/mcp", mode="legacy") as client:
            assert (await client.call_tool("add", {"a": 2, "b": 3})).structured_content == {"result": 5}
    # The official client in a pod, through the Service's DNS name: one session, its counter counting up.
    url = f"http://smoke.{namespace}.svc.cluster.local:8000/mcp"
    start_job(kube, namespace, "mcp-probe", ["python3", "-c", PROBE, url, "3"])
    seen = job_output(kube, namespace, "mcp-probe")
    assert seen["counts"] == [1, 2, 3] and seen["modern_add"] == 5, seen

    # ... and by DNS name from another pod.
    kube.apply(probe_job(namespace), namespace)
    kube.run("wait", "-n", namespace, "--for=condition=complete", "job/probe", "--timeout=90s", timeout=120)
    assert '"ready":true' in kube.run("logs", "-n", namespace, "job/probe").replace(" ", "")

    # Deleting the Deployment garbage-collects its ReplicaSet and pods.
    kube.run("delete", "deployment", "smoke", "-n", namespace, "--wait=false")
    deadline = time.monotonic() + 90
    while kube.json("get", "pods", "-n", namespace, "-l", "app=smoke")["items"]:
        assert time.monotonic() < deadline, "pods of a deleted Deployment were not collected"
        await anyio.sleep(1)
    assert not kube.json("get", "replicasets", "-n", namespace)["items"]


REDIS_POD = """
apiVersion: v1
kind: Pod
metadata: {name: redis}
spec:
  securityContext: {runAsNonRoot: true, runAsUser: 65532, fsGroup: 65532}
  containers:
  - name: redis
    image: @IMAGE@
    imagePullPolicy: @PULL@
    args: ["--save", "", "--dir", "/data"]
    ports: [{containerPort: 6379}]
    readinessProbe: {tcpSocket: {port: 6379}, periodSeconds: 1}
    volumeMounts: [{name: data, mountPath: /data}]
  volumes: [{name: data, emptyDir: {}}]
"""


def test_the_redis_image_serves(kube: Cluster, namespace: str) -> None:
    kube.apply(REDIS_POD.replace("@IMAGE@", target.image("redis")).replace("@PULL@", PULL), namespace)
    kube.run("wait", "-n", namespace, "--for=condition=Ready", "pod/redis", "--timeout=90s", timeout=120)
    assert "Ready to accept connections" in kube.run("logs", "-n", namespace, "pod/redis")
