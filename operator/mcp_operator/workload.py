"""The server Deployment of an McpServer (pure: spec in, manifest out)."""

from __future__ import annotations

import hashlib
import json
import math
from typing import Any

from mcp_operator.api import McpServerSpec
from mcp_operator.defaults import runtime_default
from mcp_operator.names import Owner
from mcp_operator.runtime_env import (
    AUTH_TOKEN_FILE,
    INTROSPECTION_SECRET_FILE,
    REDIS_PASSWORD_FILE,
    REQUEST_STATE_KEYS_FILE,
    SHUTDOWN_GRACE_SECONDS,
    server_env,
)

CONFIG_HASH_ANNOTATION = "mcpfleet.dev/config-hash"
PRE_STOP_SECONDS = 5  # time for the endpoint removal to reach every kube-proxy before the drain starts
RUNTIME_USER = 65532


def config_hash(rendered: Any, secret_versions: dict[str, str]) -> str:
    """A digest of the rendered pod template and of the referenced Secrets' contents: changes roll the pods."""
    payload = json.dumps({"template": rendered, "secrets": secret_versions}, sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def _secret_volume(name: str, secret: str, key: str, path: str) -> tuple[dict[str, Any], dict[str, Any]]:
    directory, _, filename = path.rpartition("/")
    volume = {
        "name": name,
        "secret": {"secretName": secret, "items": [{"key": key, "path": filename}], "defaultMode": 0o440},
    }
    mount = {"name": name, "mountPath": directory, "readOnly": True}
    return volume, mount


def _secret_mounts(owner: Owner, spec: McpServerSpec) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    pairs = [_secret_volume("request-state", owner.request_state_secret, "keys", REQUEST_STATE_KEYS_FILE)]
    if spec.sessions.backend == "redis":
        if spec.redis.mode == "managed":
            pairs.append(_secret_volume("redis-auth", owner.redis_secret, "password", REDIS_PASSWORD_FILE))
        elif spec.redis.password_secret_ref is not None:
            ref = spec.redis.password_secret_ref
            pairs.append(_secret_volume("redis-auth", ref.name, ref.key, REDIS_PASSWORD_FILE))
    if spec.auth.bearer_token_secret_ref is not None:
        ref = spec.auth.bearer_token_secret_ref
        pairs.append(_secret_volume("auth", ref.name, ref.key, AUTH_TOKEN_FILE))
    if spec.auth.oauth is not None and spec.auth.oauth.introspection is not None:
        ref = spec.auth.oauth.introspection.client_secret_ref
        pairs.append(_secret_volume("oauth-introspection", ref.name, ref.key, INTROSPECTION_SECRET_FILE))
    return [v for v, _ in pairs], [m for _, m in pairs]


def referenced_secrets(owner: Owner, spec: McpServerSpec) -> list[str]:
    """The Secrets whose contents the pods read (a change of any of them rolls the pods)."""
    volumes, _ = _secret_mounts(owner, spec)
    return [v["secret"]["secretName"] for v in volumes]


def readiness_probe() -> dict[str, Any]:
    """`/readyz` answers 503 at once while Redis refuses writes; the kubelet takes the pod out of the Service
    only after 3 such answers in a row (10 to 15 s). A Redis switchover pauses writes for a few seconds on
    every replica at once: taking them all out would turn the runtime's 503 with Retry-After into refused
    connections. The timeout lets the runtime's own bounded Redis call answer (a kubelet timeout is a failure
    too, and 1 s, its default, is shorter than a Redis call may take)."""
    timeout = math.ceil(float(runtime_default("redis_timeout_seconds"))) + 1
    return {
        "httpGet": {"path": "/readyz", "port": "http"},
        "periodSeconds": 5,
        "failureThreshold": 3,
        "timeoutSeconds": timeout,
    }


def build_deployment(owner: Owner, spec: McpServerSpec, secret_versions: dict[str, str]) -> dict[str, Any]:
    """`spec` is the effective spec (`config.effective_spec`), which names the image and the pull policy."""
    secret_volumes, secret_mounts = _secret_mounts(owner, spec)
    container: dict[str, Any] = {
        "name": "server",
        "image": spec.image,
        "imagePullPolicy": spec.image_pull_policy,
        "ports": [{"name": "http", "containerPort": spec.port, "protocol": "TCP"}],
        "env": server_env(owner, spec),
        "readinessProbe": readiness_probe(),
        "livenessProbe": {
            "httpGet": {"path": "/healthz", "port": "http"},
            "periodSeconds": 10,
            "failureThreshold": 3,
            "initialDelaySeconds": 5,
        },
        "lifecycle": {"preStop": {"sleep": {"seconds": PRE_STOP_SECONDS}}},
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "runAsNonRoot": True,
            "capabilities": {"drop": ["ALL"]},
        },
        "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}, *secret_mounts],
    }
    if spec.command:
        container["command"] = list(spec.command)
    if spec.args or spec.command:
        container["args"] = list(spec.args)
    else:
        container["args"] = [
            "serve",
            "--app",
            spec.app,
            "--host",
            "0.0.0.0",
            "--port",
            str(spec.port),
            "--path",
            spec.path,
        ]
    if spec.env_from:
        container["envFrom"] = list(spec.env_from)
    if spec.resources:
        container["resources"] = spec.resources

    pod_spec: dict[str, Any] = {
        "containers": [container],
        "terminationGracePeriodSeconds": PRE_STOP_SECONDS + SHUTDOWN_GRACE_SECONDS + 5,
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": RUNTIME_USER,
            "runAsGroup": RUNTIME_USER,
            "fsGroup": RUNTIME_USER,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "volumes": [{"name": "tmp", "emptyDir": {"sizeLimit": "64Mi"}}, *secret_volumes],
        "enableServiceLinks": False,
    }
    for field, key in [
        ("node_selector", "nodeSelector"),
        ("tolerations", "tolerations"),
        ("affinity", "affinity"),
        ("topology_spread_constraints", "topologySpreadConstraints"),
        ("image_pull_secrets", "imagePullSecrets"),
        ("service_account_name", "serviceAccountName"),
    ]:
        value = getattr(spec, field)
        if value:
            pod_spec[key] = value

    template: dict[str, Any] = {
        "metadata": {"labels": owner.labels("server"), "annotations": dict(spec.pod_annotations)},
        "spec": pod_spec,
    }
    template["metadata"]["annotations"][CONFIG_HASH_ANNOTATION] = config_hash(template, secret_versions)
    deployment: dict[str, Any] = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": owner.metadata(owner.server, "server"),
        "spec": {
            "selector": {"matchLabels": owner.selector("server")},
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}},
            "template": template,
        },
    }
    if not spec.autoscaling.enabled:
        deployment["spec"]["replicas"] = spec.replicas  # with an HPA, the HPA owns the count
    return deployment
