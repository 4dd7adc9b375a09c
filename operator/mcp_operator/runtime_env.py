"""The server pods' environment, rendered through the runtime's settings model (the operator/runtime contract).

Every variable comes from `mcp_runtime.settings.RuntimeSettings.env_var`: its name and its rendering are the
runtime's, and a setting the model does not have is an error here, in the operator's tests, not a variable
the runtime would silently ignore.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from mcp_operator.api import Durability, McpServerSpec, OAuthSpec
from mcp_operator.defaults import MASTER_NAME, REDIS_PORT, runtime_default
from mcp_operator.exposure import exposed_hosts, exposed_origins
from mcp_operator.names import Owner
from mcp_operator.redis_ha import sentinel_addresses
from mcp_runtime.settings import RuntimeSettings

SECRETS_DIR = "/etc/mcp-fleet"
REDIS_PASSWORD_FILE = f"{SECRETS_DIR}/redis/password"
REQUEST_STATE_KEYS_FILE = f"{SECRETS_DIR}/request-state/keys"
AUTH_TOKEN_FILE = f"{SECRETS_DIR}/auth/tokens"
INTROSPECTION_SECRET_FILE = f"{SECRETS_DIR}/oauth/introspection-secret"
# Set explicitly (to the runtime's default), so the pods' termination grace period is sized from it.
SHUTDOWN_GRACE_SECONDS = int(runtime_default("shutdown_grace_seconds"))


def setting(field: str, value: Any) -> dict[str, Any]:
    """One runtime setting as a container EnvVar (KeyError for a field the runtime does not have)."""
    return RuntimeSettings.env_var(field, value)


def redis_url(owner: Owner, spec: McpServerSpec) -> str:
    if spec.redis.mode == "external":
        assert spec.redis.url is not None  # the CRD's CEL rule requires it
        return spec.redis.url
    return f"redis://{owner.redis}.{owner.namespace}.svc:{REDIS_PORT}/0"


def durability_env(durability: Durability) -> list[dict[str, Any]]:
    """spec.redis.highAvailability.durability as the runtime's settings: whether a write that changes what a
    client is told waits for a replica, and what happens when none confirms it in time (README: what a
    failover can lose)."""
    if durability == "async":
        return [setting("redis_wait_replicas", 0)]
    unreplicated = "accept" if durability == "replicated" else "refuse"
    return [setting("redis_wait_replicas", 1), setting("redis_unreplicated", unreplicated)]


def redis_env(owner: Owner, spec: McpServerSpec) -> list[dict[str, Any]]:
    """Where the session store is: one URL, or Sentinels and the name of the primary they watch."""
    redis = spec.redis
    env = []
    if redis.mode == "managed" and redis.high_availability.enabled:
        env += [
            setting("redis_sentinels", sentinel_addresses(owner)),
            setting("redis_sentinel_master", MASTER_NAME),
            *durability_env(redis.high_availability.durability),
        ]
    elif redis.mode == "external" and redis.sentinels:
        env += [
            setting("redis_sentinels", redis.sentinels),
            setting("redis_sentinel_master", redis.sentinel_master_name),
        ]
        if redis.url:
            env.append(setting("redis_url", redis.url))
    else:
        env.append(setting("redis_url", redis_url(owner, spec)))
    if redis.mode == "managed" or redis.password_secret_ref is not None:
        env.append(setting("redis_password_file", REDIS_PASSWORD_FILE))
    return env


def allowed_hosts(owner: Owner, spec: McpServerSpec) -> list[str]:
    names = [
        owner.name,
        f"{owner.name}.{owner.namespace}",
        owner.service_host(),
        f"{owner.service_host()}.cluster.local",
    ]
    local: list[str] = runtime_default("allowed_hosts")  # the runtime's own: localhost on any port
    # The host of spec.auth.oauth.resource: the URL clients use, so the Host they send (the guard's 421 otherwise).
    resource = [urlsplit(spec.auth.oauth.resource).netloc] if spec.auth.oauth is not None else []
    hosts = [*local, *names, *(f"{n}:*" for n in names), *exposed_hosts(spec), *resource, *spec.allowed_hosts]
    return list(dict.fromkeys(hosts))


def server_env(owner: Owner, spec: McpServerSpec) -> list[dict[str, Any]]:
    """The environment of the server container: the runtime's settings, then the user's own `env`."""
    sessions = spec.sessions
    env = [
        setting("session_backend", sessions.backend),
        setting("session_ttl_seconds", sessions.ttl_seconds),
        setting("max_sessions", sessions.max_sessions),
        setting("max_sessions_per_client", sessions.max_sessions_per_client),
        setting("allowed_hosts", allowed_hosts(owner, spec)),
        setting("request_state_keys_file", REQUEST_STATE_KEYS_FILE),
        setting("shutdown_grace_seconds", SHUTDOWN_GRACE_SECONDS),
        setting("log_format", "json"),
        {"name": RuntimeSettings.env_name("replica_name"), "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
    ]
    if spec.allowed_origins or spec.expose is not None:
        origins = ["http://localhost:*", *exposed_origins(spec), *spec.allowed_origins]
        env.append(setting("allowed_origins", origins))
    if sessions.backend == "redis":
        env += redis_env(owner, spec)
    if spec.auth.bearer_token_secret_ref is not None:
        env.append(setting("auth_token_file", AUTH_TOKEN_FILE))
    if spec.auth.oauth is not None:
        env += oauth_env(spec.auth.oauth)
    return env + list(spec.env)


def oauth_env(oauth: OAuthSpec) -> list[dict[str, Any]]:
    """spec.auth.oauth as the runtime's MCP_OAUTH_* settings (what is unset keeps the runtime's default)."""
    env = [setting("oauth_issuer", oauth.issuer), setting("oauth_resource", oauth.resource)]
    optional: dict[str, Any] = {
        "oauth_audiences": oauth.audiences,
        "oauth_required_scopes": oauth.required_scopes,
        "oauth_tool_scopes": oauth.tool_scopes,
        "oauth_algorithms": oauth.algorithms,
        "oauth_clock_skew_seconds": oauth.clock_skew_seconds,
        "oauth_metadata_url": oauth.metadata_url,
        "oauth_jwks_url": oauth.jwks_url,
    }
    env += [setting(field, value) for field, value in optional.items() if value not in (None, [], {})]
    if oauth.introspection is not None:
        env.append(setting("oauth_introspection_client_id", oauth.introspection.client_id))
        env.append(setting("oauth_introspection_client_secret_file", INTROSPECTION_SECRET_FILE))
    return env
