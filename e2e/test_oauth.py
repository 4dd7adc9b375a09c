"""Authorization on the cluster: a real OpenID provider in a pod (panva's oidc-provider, e2e/oidc), an
McpServer with spec.auth.oauth and three replicas on Redis, the operator's Verified probe authenticating as
its probe client, and the official MCP client in a pod getting its token from the issuer the 401 leads it to
and calling tools through the Service across the replicas."""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from e2e import target
from e2e.fleet import helm_install, job_output, start_job, wait_for, wait_ready
from e2e.kube import Cluster
from tests.support.oidc import new_key

RELEASE = "oauth-e2e"
RELEASE_NAMESPACE = "mcp-fleet-oauth-e2e"
NAME = "demo-oauth"
CLIENT = (Path(__file__).parent / "oauth_client.py").read_text()


def secret(name: str, data: dict[str, str]) -> dict[str, Any]:
    encoded = {k: base64.b64encode(v.encode()).decode() for k, v in data.items()}
    return {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name}, "data": encoded}


def provider(namespace: str) -> list[dict[str, Any]]:
    """The OpenID provider's key Secret, Deployment and Service; its issuer is the Service's URL."""
    labels = {"app": "oidc"}
    env = {
        "ISSUER": f"http://oidc.{namespace}.svc",
        "RESOURCES": f"http://{NAME}.{namespace}.svc/mcp",
        "KEYS_FILE": "/keys/keys.json",
    }
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "oidc"},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "securityContext": {"runAsNonRoot": True, "runAsUser": 65532},
                    "containers": [
                        {
                            "name": "oidc",
                            "image": target.image("oidc-provider"),
                            "imagePullPolicy": target.PULL_POLICY,
                            "env": [{"name": k, "value": v} for k, v in env.items()],
                            "ports": [{"name": "http", "containerPort": 8080}],
                            "readinessProbe": {
                                "httpGet": {"path": "/.well-known/openid-configuration", "port": "http"}
                            },
                            "volumeMounts": [{"name": "keys", "mountPath": "/keys", "readOnly": True}],
                        }
                    ],
                    "volumes": [{"name": "keys", "secret": {"secretName": "oidc-keys"}}],
                },
            },
        },
    }
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "oidc"},
        "spec": {"selector": labels, "ports": [{"port": 80, "targetPort": "http"}]},
    }
    keys = secret("oidc-keys", {"keys.json": json.dumps({"keys": [new_key("cluster-key-1")]})})
    return [keys, deployment, service]


def server(namespace: str) -> dict[str, Any]:
    oauth = {
        "issuer": f"http://oidc.{namespace}.svc",
        "resource": f"http://{NAME}.{namespace}.svc/mcp",
        "requiredScopes": ["tools:read"],
        "toolScopes": {"session_increment": ["tools:admin"]},
        "probeClient": {
            "clientId": "machine",
            "clientSecretRef": {"name": "probe-client", "key": "secret"},
            "scopes": ["tools:read", "tools:admin"],
        },
    }
    return {
        "apiVersion": "mcpfleet.dev/v1alpha1",
        "kind": "McpServer",
        "metadata": {"name": NAME},
        "spec": {"replicas": 3, "sessions": {"backend": "redis"}, "auth": {"oauth": oauth}},
    }


@pytest.fixture(scope="module")
def oauth_namespace(kube: Cluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    helm_install(kube, RELEASE, RELEASE_NAMESPACE, {}, tmp_path_factory.mktemp("helm"))
    namespace = f"e2e-oauth-{uuid.uuid4().hex[:6]}"
    kube.run("create", "namespace", namespace)
    try:
        for manifest in [*provider(namespace), secret("probe-client", {"secret": "machine-secret"})]:
            kube.run("apply", "-n", namespace, "-f", "-", input=json.dumps(manifest))
        kube.run("rollout", "status", "-n", namespace, "deployment/oidc", "--timeout=180s", timeout=200)
        kube.run("apply", "-n", namespace, "-f", "-", input=json.dumps(server(namespace)))
        wait_ready(kube, namespace, NAME, 420)
        yield namespace
    finally:
        kube.run("delete", "namespace", namespace, "--wait=true", "--timeout=180s", check=False, timeout=240)
        kube.helm("uninstall", RELEASE, "-n", RELEASE_NAMESPACE, "--wait", check=False)


def verified(kube: Cluster, namespace: str) -> dict[str, Any]:
    conditions = (kube.json("get", "mcps", NAME, "-n", namespace).get("status") or {}).get("conditions") or []
    return next((c for c in conditions if c["type"] == "Verified"), {})


def test_the_operator_probes_with_its_probe_client(kube: Cluster, oauth_namespace: str) -> None:
    found = wait_for("Verified=True", lambda: verified(kube, oauth_namespace).get("status") == "True", 180)
    assert found
    message = verified(kube, oauth_namespace)["message"]
    assert "served by each of 3 pods" in message, message


def test_the_official_client_in_a_pod_finds_the_issuer_and_calls_across_replicas(
    kube: Cluster, oauth_namespace: str
) -> None:
    url = kube.json("get", "mcps", NAME, "-n", oauth_namespace)["status"]["url"]
    issuer = f"http://oidc.{oauth_namespace}.svc"
    start_job(
        kube, oauth_namespace, "oauth-client", ["python3", "-c", CLIENT, url, issuer, "machine", "machine-secret"]
    )
    seen = job_output(kube, oauth_namespace, "oauth-client", 180)
    assert seen["without_token"] == 401 and "resource_metadata=" in seen["challenge"], seen
    assert (seen["subject"], seen["issuer"]) == ("machine", issuer), seen
    assert len(seen["replicas"]) == 3, seen  # the Service spread the calls over every replica
    assert seen["counts"] == [1, 2, 3, 4, 5], seen  # one session, whichever replica served it
    assert "session_increment" in seen["tools"] and "caller_info" in seen["tools"], seen
