"""Unit tests of the operator's pure builders: spec in, manifests out (no cluster)."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from mcp_operator.api import McpServerSpec
from mcp_operator.desired import desired_state
from mcp_operator.networking import effective_affinity, service_url
from mcp_operator.runtime_env import setting
from mcp_operator.workload import CONFIG_HASH_ANNOTATION
from mcp_runtime.settings import RuntimeSettings
from tests.operator.manifests import KEYS, OWNER, build, env_of, spec


def test_defaults_make_a_memory_server() -> None:
    children = build(spec())
    assert set(children) == {"Secret/demo-request-state", "Deployment/demo", "Service/demo"}
    deployment = children["Deployment/demo"]
    assert deployment["spec"]["replicas"] == 1
    env = env_of(deployment)
    assert env["MCP_SESSION_BACKEND"] == "memory"
    assert env["MCP_REQUEST_STATE_KEYS_FILE"] == "/etc/mcp-fleet/request-state/keys"
    assert env["MCP_REPLICA_NAME"] == {"fieldRef": {"fieldPath": "metadata.name"}}
    assert "demo.team-a.svc:*" in env["MCP_ALLOWED_HOSTS"].split(",")
    assert children["Service/demo"]["spec"]["sessionAffinity"] == "None"


def test_every_rendered_variable_is_a_runtime_setting() -> None:
    names = {RuntimeSettings.env_name(f) for f in RuntimeSettings.model_fields}
    tokens = {"bearerTokenSecretRef": {"name": "t", "key": "k"}}
    for s in [spec(), spec(sessions={"backend": "redis"}, auth=tokens), spec(auth={**tokens, "oauth": OAUTH})]:
        assert set(env_of(build(s)["Deployment/demo"])) <= names
    with pytest.raises(KeyError):
        setting("no_such_setting", 1)


def test_pod_security_probes_and_rollout() -> None:
    deployment = build(spec())["Deployment/demo"]
    pod = deployment["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert container["securityContext"] == {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "runAsNonRoot": True,
        "capabilities": {"drop": ["ALL"]},
    }
    assert (
        pod["securityContext"]["runAsNonRoot"] and pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault"
    )
    readiness = container["readinessProbe"]
    assert readiness["httpGet"]["path"] == "/readyz"
    # The runtime's bounded Redis call answers before the kubelet gives up on the probe, and a switchover's
    # few seconds of paused writes do not take every replica out of the Service.
    assert readiness["timeoutSeconds"] > RuntimeSettings.model_fields["redis_timeout_seconds"].default
    assert readiness["periodSeconds"] * (readiness["failureThreshold"] - 1) >= 10
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["lifecycle"]["preStop"]["sleep"]["seconds"] == 5
    # The grace period covers the preStop delay and the runtime's drain (MCP_SHUTDOWN_GRACE_SECONDS).
    assert pod["terminationGracePeriodSeconds"] > 5 + int(env_of(deployment)["MCP_SHUTDOWN_GRACE_SECONDS"])
    assert deployment["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    assert container["args"] == [
        "serve",
        "--app",
        "mcp_runtime.examples.demo:app",
        "--host",
        "0.0.0.0",
        "--port",
        "8000",
        "--path",
        "/mcp",
    ]


def test_config_hash_rolls_on_spec_and_secret_changes() -> None:
    def digest(s: McpServerSpec, versions: dict[str, str] | None = None) -> str:
        annotations = build(s, versions)["Deployment/demo"]["spec"]["template"]["metadata"]["annotations"]
        return str(annotations[CONFIG_HASH_ANNOTATION])

    base = digest(spec())
    assert digest(spec()) == base
    assert digest(spec(sessions={"ttlSeconds": 60})) != base
    assert digest(spec(), {"demo-request-state": "v2"}) != base
    assert digest(spec(replicas=3)) == base  # scaling is not a configuration change


def test_redis_managed() -> None:
    children = build(spec(replicas=3, sessions={"backend": "redis"}))
    assert {
        "StatefulSet/demo-redis",
        "Service/demo-redis",
        "Secret/demo-redis-auth",
        "NetworkPolicy/demo-redis",
    } <= set(children)
    env = env_of(children["Deployment/demo"])
    assert env["MCP_REDIS_URL"] == "redis://demo-redis.team-a.svc:6379/0"
    assert env["MCP_REDIS_PASSWORD_FILE"] == "/etc/mcp-fleet/redis/password"
    assert base64.b64decode(children["Secret/demo-redis-auth"]["data"]["password"]).decode() == "p" * 64
    redis = children["StatefulSet/demo-redis"]["spec"]
    assert "volumeClaimTemplates" not in redis and "--appendonly" in redis["template"]["spec"]["containers"][0]["args"]
    assert children["Service/demo"]["spec"]["sessionAffinity"] == "None"  # any replica serves any session
    policy = children["NetworkPolicy/demo-redis"]["spec"]
    assert policy["ingress"][0]["from"][0]["podSelector"]["matchLabels"]["app.kubernetes.io/component"] == "server"


def test_redis_persistence_uses_a_claim_and_aof() -> None:
    s = spec(
        sessions={"backend": "redis"},
        redis={"persistence": {"enabled": True, "size": "5Gi", "storageClassName": "fast"}},
    )
    redis = build(s)["StatefulSet/demo-redis"]["spec"]
    claim = redis["volumeClaimTemplates"][0]["spec"]
    assert claim["resources"]["requests"]["storage"] == "5Gi" and claim["storageClassName"] == "fast"
    args = redis["template"]["spec"]["containers"][0]["args"]
    assert args[args.index("--appendonly") + 1] == "yes"


def test_redis_external() -> None:
    s = spec(
        sessions={"backend": "redis"},
        redis={
            "mode": "external",
            "url": "rediss://cache.example:6380/2",
            "tls": True,
            "passwordSecretRef": {"name": "cache", "key": "pw"},
        },
    )
    children = build(s)
    assert not [k for k in children if "demo-redis" in k]
    env = env_of(children["Deployment/demo"])
    assert env["MCP_REDIS_URL"] == "rediss://cache.example:6380/2"
    volumes = children["Deployment/demo"]["spec"]["template"]["spec"]["volumes"]
    assert {"key": "pw", "path": "password"} in next(v for v in volumes if v["name"] == "redis-auth")["secret"]["items"]


def test_switching_back_to_memory_removes_redis() -> None:
    state = desired_state(OWNER, spec(), KEYS, {})
    assert {(r.kind, r.name) for r in state.absent} >= {("StatefulSet", "demo-redis"), ("Secret", "demo-redis-auth")}


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({}, "None"),
        ({"replicas": 3}, "ClientIP"),
        ({"replicas": 3, "sessions": {"backend": "redis"}}, "None"),
        ({"replicas": 1, "autoscaling": {"enabled": True, "maxReplicas": 4}}, "ClientIP"),
        ({"replicas": 3, "sessions": {"affinity": "None"}}, "None"),
        ({"sessions": {"affinity": "ClientIP", "ttlSeconds": 600}}, "ClientIP"),
    ],
)
def test_session_affinity(fields: dict[str, Any], expected: str) -> None:
    s = spec(**fields)
    assert effective_affinity(s) == expected
    service = build(s)["Service/demo"]["spec"]
    assert service["sessionAffinity"] == expected
    if expected == "ClientIP":
        assert service["sessionAffinityConfig"]["clientIP"]["timeoutSeconds"] == min(s.sessions.ttl_seconds, 86400)


def test_autoscaling_and_disruption_budget() -> None:
    children = build(
        spec(autoscaling={"enabled": True, "minReplicas": 2, "maxReplicas": 6}, disruptionBudget={"maxUnavailable": 1})
    )
    hpa = children["HorizontalPodAutoscaler/demo"]["spec"]
    assert (hpa["minReplicas"], hpa["maxReplicas"]) == (2, 6)
    assert "replicas" not in children["Deployment/demo"]["spec"]  # the HPA owns the count
    assert children["PodDisruptionBudget/demo"]["spec"]["maxUnavailable"] == 1


def test_auth_and_custom_image() -> None:
    s = spec(
        image="example/server:1",
        command=["python", "-m", "server"],
        args=["--fast"],
        env=[{"name": "FOO", "value": "1"}],
        envFrom=[{"configMapRef": {"name": "cfg"}}],
        auth={"bearerTokenSecretRef": {"name": "tokens", "key": "list"}},
        nodeSelector={"pool": "mcp"},
        tolerations=[{"key": "mcp", "operator": "Exists"}],
        serviceAccountName="sa",
        imagePullSecrets=[{"name": "regcred"}],
        podAnnotations={"team": "a"},
        port=9000,
    )
    deployment = build(s)["Deployment/demo"]
    pod = deployment["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert container["image"] == "example/server:1"
    assert container["command"] == ["python", "-m", "server"] and container["args"] == ["--fast"]
    assert (
        env_of(deployment)["FOO"] == "1" and env_of(deployment)["MCP_AUTH_TOKEN_FILE"] == "/etc/mcp-fleet/auth/tokens"
    )
    assert container["envFrom"] == [{"configMapRef": {"name": "cfg"}}]
    assert pod["nodeSelector"] == {"pool": "mcp"} and pod["serviceAccountName"] == "sa"
    assert pod["imagePullSecrets"] == [{"name": "regcred"}]
    assert deployment["spec"]["template"]["metadata"]["annotations"]["team"] == "a"
    assert container["ports"][0]["containerPort"] == 9000


OAUTH = {
    "issuer": "https://id.example.com",
    "resource": "https://mcp.example.com/mcp",
    "requiredScopes": ["mcp:use"],
    "toolScopes": {"delete_file": ["files:write"], "read_file": ["files:read", "mcp:use"]},
    "algorithms": ["ES256"],
    "clockSkewSeconds": 10,
    "introspection": {"clientId": "mcp-servers", "clientSecretRef": {"name": "introspect", "key": "secret"}},
}


def test_oauth_renders_the_runtime_settings_it_reads_back(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    deployment = build(spec(auth={"oauth": OAUTH}))["Deployment/demo"]
    env = env_of(deployment)
    assert env["MCP_OAUTH_ISSUER"] == "https://id.example.com"
    assert env["MCP_OAUTH_RESOURCE"] == "https://mcp.example.com/mcp"
    assert env["MCP_OAUTH_INTROSPECTION_CLIENT_SECRET_FILE"] == "/etc/mcp-fleet/oauth/introspection-secret"
    assert "MCP_OAUTH_AUDIENCES" not in env  # unset: the runtime's default
    assert "mcp.example.com" in env["MCP_ALLOWED_HOSTS"].split(",")  # the resource's host passes the guard
    pod = deployment["spec"]["template"]["spec"]
    volume = next(v for v in pod["volumes"] if v["name"] == "oauth-introspection")
    assert volume["secret"] == {
        "secretName": "introspect",
        "items": [{"key": "secret", "path": "introspection-secret"}],
        "defaultMode": 0o440,
    }
    # What the pods get, read back by the runtime's own settings model (the secret file where it is mounted).
    secret = tmp_path / "secret"
    secret.write_text("s3cret")
    rendered = {k: v for k, v in env.items() if k.startswith("MCP_OAUTH_") and isinstance(v, str)}
    rendered["MCP_OAUTH_INTROSPECTION_CLIENT_SECRET_FILE"] = str(secret)
    for name, value in rendered.items():
        monkeypatch.setenv(name, value)
    settings = RuntimeSettings()
    assert settings.oauth_tool_scopes == OAUTH["toolScopes"]
    assert settings.oauth_required_scopes == ["mcp:use"] and settings.oauth_algorithms == ["ES256"]
    assert settings.oauth_clock_skew_seconds == 10 and settings.oauth_introspection_client_id == "mcp-servers"


@pytest.mark.parametrize(
    ("oauth", "why"),
    [
        ({"issuer": "https://id.example.com"}, "resource"),
        ({**OAUTH, "issuer": "id.example.com"}, "issuer"),
        ({**OAUTH, "algorithms": ["HS256"]}, "algorithms"),
        ({**OAUTH, "requiredScopes": ["two words"]}, "requiredScopes"),
        ({**OAUTH, "introspection": {"clientId": "x"}}, "clientSecretRef"),
        ({**OAUTH, "clockSkewSeconds": 3600}, "clockSkewSeconds"),
    ],
)
def test_bad_oauth_specs_are_refused(oauth: dict[str, Any], why: str) -> None:
    with pytest.raises(ValueError, match=why):
        McpServerSpec.model_validate({"auth": {"oauth": oauth}})


def test_children_carry_labels_and_owner_reference() -> None:
    for manifest in build(spec(sessions={"backend": "redis"})).values():
        meta = manifest["metadata"]
        assert meta["namespace"] == "team-a"
        assert meta["labels"]["app.kubernetes.io/managed-by"] == "mcp-fleet"
        assert meta["labels"]["app.kubernetes.io/instance"] == "demo"
        assert meta["ownerReferences"][0]["uid"] == "uid-1" and meta["ownerReferences"][0]["controller"]


def test_service_url() -> None:
    assert service_url(OWNER, spec()) == "http://demo.team-a.svc/mcp"
    assert service_url(OWNER, spec(service={"port": 8080}, path="/x")) == "http://demo.team-a.svc:8080/x"


def test_optional_objects_get_no_default() -> None:
    from mcp_operator.crd import build_crd

    spec_schema = build_crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
    assert "default" not in spec_schema["properties"]["disruptionBudget"]
    assert spec_schema["properties"]["sessions"]["default"] == {}


def test_invalid_specs_are_rejected_by_the_models() -> None:
    from pydantic import ValidationError

    bad_specs: list[dict[str, Any]] = [
        {"replicas": -1},
        {"sessions": {"backend": "postgres"}},
        {"app": "not a spec"},
        {"unknownField": 1},
        {"service": {"port": 70000}},
    ]
    for bad in bad_specs:
        with pytest.raises(ValidationError):
            spec(**bad)
