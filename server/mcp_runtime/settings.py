"""The runtime's settings: one pydantic-settings model, read from `MCP_*` environment variables.

This class is the contract between the operator and the runtime: the operator renders a pod's environment
from it, the runtime reads it back. Every field has a description, which `mcp-runtime settings` prints.
"""

from __future__ import annotations

import json
import socket
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

ENV_PREFIX = "MCP_"

CommaList = Annotated[list[str], NoDecode]


class RuntimeSettings(BaseSettings):
    """Every setting of `mcp-runtime`, each from the environment variable `MCP_<FIELD NAME IN CAPITALS>`."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore", frozen=True)

    session_backend: Literal["memory", "redis"] = Field(
        "memory",
        description="Where sessions, session state and handles live: memory (this process only) or redis "
        "(shared by every replica; needs MCP_REDIS_URL, or MCP_REDIS_SENTINELS and MCP_REDIS_SENTINEL_MASTER).",
    )
    redis_url: str | None = Field(
        None,
        description="redis:// or rediss:// (TLS) URL of the session store, e.g. redis://user:pass@host:6379/0.",
    )
    redis_sentinels: CommaList = Field(
        default_factory=list,
        description="Sentinels watching the session store, comma-separated host:port. With "
        "MCP_REDIS_SENTINEL_MASTER the runtime asks them for the primary and follows a failover; MCP_REDIS_URL is "
        "then optional and gives only credentials, database and TLS (its host is ignored), which the Sentinels "
        "are connected with too.",
    )
    redis_sentinel_master: str | None = Field(
        None, description="The name the Sentinels monitor the session store's primary under (e.g. mymaster)."
    )
    redis_wait_replicas: int = Field(
        0,
        ge=0,
        description="Every write that changes what a client is told (opening or deleting a session, session state, "
        "handles, app state) waits (Redis WAIT, on the same connection) until this many replicas hold it, so a "
        "failover right after cannot lose it; 0 does not wait. MCP_REDIS_UNREPLICATED says what happens when "
        "fewer replicas answer within MCP_REDIS_WAIT_TIMEOUT_SECONDS.",
    )
    redis_wait_timeout_seconds: float = Field(
        0.1, gt=0, description="The longest a write waits for MCP_REDIS_WAIT_REPLICAS replicas."
    )
    redis_unreplicated: Literal["accept", "refuse"] = Field(
        "accept",
        description="A write that fewer than MCP_REDIS_WAIT_REPLICAS replicas hold in time: `accept` answers as "
        "usual (availability first; a failover may still lose it; counted in "
        "mcp_runtime_redis_writes_unreplicated_total), `refuse` answers 503 with Retry-After (durability first: "
        "no answer that a failover could take back; the write may still have been applied on the primary).",
    )
    redis_password_file: Path | None = Field(
        None, description="A file holding the Redis password (used when the URL carries none)."
    )
    redis_key_prefix: str = Field(
        "mcp:", min_length=1, description="Prefix of every Redis key, so several servers can share one Redis."
    )
    redis_timeout_seconds: float = Field(
        2.0, gt=0, description="Redis connect and command timeout; past it the request gets 503."
    )
    request_state_keys: CommaList = Field(
        default_factory=list,
        description="Keys sealing the requestState of modern-era multi round-trip requests, comma-separated "
        "(32+ bytes each): the first seals, every key opens, so keys rotate without breaking retries in "
        "flight. Every replica needs the same keys; unset on one replica, a random key per process.",
    )
    request_state_keys_file: Path | None = Field(
        None,
        description="A file of requestState keys, one a line (a mounted Secret); used with MCP_REQUEST_STATE_KEYS.",
    )
    request_state_ttl_seconds: float = Field(
        600.0, gt=0, description="How long a sealed requestState stays valid for the client's retry."
    )
    event_log_length: int = Field(
        1000,
        ge=1,
        description="Messages of a session's SSE streams (its GET stream and its POST streams) kept for a stream "
        "resumed with Last-Event-ID on any replica; they also go after MCP_EVENT_RETENTION_SECONDS, and with the "
        "session.",
    )
    event_retention_seconds: float = Field(
        300.0,
        gt=0,
        description="How long a session's SSE messages are kept for Last-Event-ID: a client that comes back later "
        "gets a fresh stream (a POST stream: an error for its request, whose answer is gone).",
    )
    sse_retry_ms: int = Field(
        1000,
        ge=1,
        description="The `retry:` interval (ms) sent with each POST stream's priming event (clients at 2025-11-25 "
        "and later) and before a stream is closed here: how soon the client comes back with Last-Event-ID.",
    )
    tracing: Literal["auto", "on", "off"] = Field(
        "auto",
        description="OpenTelemetry spans around each request (the SDK's middleware): on, off, or auto (on when a "
        "tracer provider is installed or OTEL_TRACES_EXPORTER / OTEL_EXPORTER_OTLP_ENDPOINT is set).",
    )
    json_window_seconds: float = Field(
        0.5,
        ge=0,
        description="A handshake-era call whose answer comes first is answered with JSON; one that has sent nothing "
        "for this long gets its SSE stream (with a priming event, at 2025-11-25 and later) so that a cut connection "
        "cannot lose its answer: the client resumes it with Last-Event-ID, on any replica. 0: every call that may "
        "be resumed opens its stream at once.",
    )
    stream_idle_close_seconds: float = Field(
        0.0,
        ge=0,
        description="Close a resumable POST stream that has sent nothing for this long (the client resumes it with "
        "Last-Event-ID, on any replica), so a long call never depends on one connection: set it below your load "
        "balancer's idle timeout (60 s on common cloud balancers). 0: streams stay open.",
    )
    session_ttl_seconds: int = Field(
        1800,
        gt=0,
        description="A session (and its state) expires after this many seconds without a request (a POST in "
        "flight counts; an open GET stream does not, and ends with the session).",
    )
    max_sessions: int = Field(
        10_000, gt=0, description="Open sessions allowed at once; a new session past it gets 503 with Retry-After."
    )
    max_sessions_per_client: int = Field(
        1_000,
        gt=0,
        description="Open sessions one client may hold (keyed by the authenticated principal, else the address).",
    )
    transport_idle_seconds: float = Field(
        2.0,
        gt=0,
        description="A session's live state on a replica (its connection, its event store) is released after this "
        "idle time and rebuilt from the session's record on its next request, so idle sessions cost little memory.",
    )
    touch_interval_seconds: float = Field(
        1.0,
        ge=0,
        description="A session live on a replica renews its expiry (and checks that it still exists) in the store "
        "at most this often, not on every request: a request costs no store round trip. A DELETE or expiry seen by "
        "another replica reaches this one at once through the session events; this bounds how long a lost "
        "notice can go unnoticed. At most a quarter of the session TTL is used. 0: on every request.",
    )
    stream_keepalive_seconds: float = Field(
        15.0, gt=0, description="A GET stream with nothing to send gets an SSE comment this often, so proxies keep it."
    )
    sweep_interval_seconds: float = Field(
        15.0, gt=0, description="How often expired sessions and handles are swept out of memory."
    )
    stream_check_seconds: float = Field(
        5.0,
        gt=0,
        description="How often a replica checks that the sessions of the GET streams it holds still exist; a "
        "stream whose session expired or was lost from the store ends within this time.",
    )
    handle_ttl_seconds: int = Field(
        3600, gt=0, description="A handle minted for a tool (modern-era state) expires after this many idle seconds."
    )
    retry_after_seconds: int = Field(
        5, gt=0, description="The Retry-After value sent with 503 answers (session cap reached, draining)."
    )
    shutdown_grace_seconds: float = Field(
        25.0,
        ge=0,
        description="On SIGTERM: stop being ready, let in-flight requests finish for at most this long, then exit.",
    )
    allowed_hosts: CommaList = Field(
        default_factory=lambda: ["localhost:*", "127.0.0.1:*", "[::1]:*"],
        description="Host header values accepted (DNS-rebinding protection), comma-separated; 'host:*' allows any "
        "port; '*' turns the check off.",
    )
    allowed_origins: CommaList = Field(
        default_factory=lambda: ["http://localhost:*", "http://127.0.0.1:*", "http://[::1]:*"],
        description="Origin header values accepted when a request carries one, comma-separated; '*' allows any.",
    )
    auth_token_file: Path | None = Field(
        None,
        description="A file of bearer tokens, one a line; when set, every /mcp request needs one of them, and "
        "sessions are bound to the token that opened them.",
    )
    oauth_issuer: str | None = Field(
        None,
        description="The OAuth authorization server (its issuer URL): when set with MCP_OAUTH_RESOURCE, every /mcp "
        "request needs an access token it issued for this server (the MCP authorization spec); its metadata is "
        "found by OpenID discovery or RFC 8414 (or at MCP_OAUTH_METADATA_URL). Sessions belong to the token's "
        "subject, so a refreshed token keeps them. Static tokens (MCP_AUTH_TOKEN_FILE) are accepted beside it.",
    )
    oauth_resource: str | None = Field(
        None,
        description="This server's canonical URL as clients reach it (e.g. https://mcp.example.com/mcp): the "
        "resource of its Protected Resource Metadata (served at /.well-known/oauth-protected-resource), and the "
        "audience every access token must name (RFC 8707).",
    )
    oauth_audiences: CommaList = Field(
        default_factory=list, description="Audiences accepted besides MCP_OAUTH_RESOURCE, comma-separated."
    )
    oauth_required_scopes: CommaList = Field(
        default_factory=list,
        description="Scopes every request needs, comma-separated; a token without them gets 403 insufficient_scope.",
    )
    oauth_scopes_supported: CommaList = Field(
        default_factory=list,
        description="Scopes announced in the resource metadata (besides the required ones and those of "
        "MCP_OAUTH_TOOL_SCOPES), comma-separated.",
    )
    oauth_tool_scopes: dict[str, list[str]] = Field(
        default_factory=dict,
        description='Scopes each tool needs, as JSON: {"delete_file": ["files:write"]}. A call without them gets '
        "403 insufficient_scope naming them; tools/list shows a caller only the tools they may call.",
    )
    oauth_algorithms: CommaList = Field(
        default_factory=lambda: ["RS256", "PS256", "ES256", "EdDSA"],
        description="Signature algorithms accepted on JWT access tokens, comma-separated (asymmetric only: "
        "RS*, PS*, ES*, EdDSA).",
    )
    oauth_clock_skew_seconds: float = Field(
        30.0, ge=0, le=300, description="Leeway on a token's exp and nbf, for clocks that differ."
    )
    oauth_metadata_url: str | None = Field(
        None, description="The authorization server's metadata document, when it is not at a well-known place."
    )
    oauth_jwks_url: str | None = Field(None, description="The issuer's JWKS, when not its metadata's jwks_uri.")
    oauth_jwks_min_refresh_seconds: float = Field(
        30.0,
        ge=0,
        description="A token signed with a key not known yet fetches the JWKS again at most this often.",
    )
    oauth_jwks_max_age_seconds: float = Field(
        3600.0, gt=0, description="The JWKS is fetched again (in the background) once it is this old."
    )
    oauth_introspection_client_id: str | None = Field(
        None,
        description="With MCP_OAUTH_INTROSPECTION_CLIENT_SECRET_FILE: access tokens that are not JWTs are checked "
        "at the authorization server's introspection endpoint (RFC 7662), as this client.",
    )
    oauth_introspection_client_secret_file: Path | None = Field(
        None, description="A file holding the introspection client's secret."
    )
    oauth_introspection_cache_seconds: float = Field(
        60.0, ge=0, description="How long an active token's introspection answer is reused (at most until it expires)."
    )
    oauth_timeout_seconds: float = Field(
        5.0,
        gt=0,
        description="The longest a request waits for the authorization server (metadata, JWKS, introspection); "
        "past it, a token that cannot be checked gets 503 with Retry-After.",
    )
    max_request_body_bytes: int = Field(
        4 * 1024 * 1024, gt=0, description="Larger request bodies get 413 before they are parsed."
    )
    max_request_header_bytes: int = Field(
        32 * 1024,
        ge=1024,
        description="The request line and headers of one request, in bytes; past it the request gets 431 and "
        "the connection is closed (with either HTTP parser).",
    )
    request_header_timeout_seconds: float = Field(
        10.0,
        gt=0,
        description="A request's line and headers must arrive within this time of its first byte (or of the "
        "connection's opening); otherwise the connection is dropped, so slow clients cannot hold connections.",
    )
    request_body_timeout_seconds: float = Field(
        30.0,
        gt=0,
        description="A request body must arrive whole within this time of its headers; otherwise the connection "
        "is dropped and nothing of the request is processed.",
    )
    json_response: bool = Field(
        False,
        description="Answer handshake-era POSTs with a JSON body instead of an SSE stream (faster, but tools "
        "cannot then send requests to the client mid-call).",
    )
    replica_name: str = Field(
        default_factory=socket.gethostname, description="This replica's name, in logs and the demo's whoami."
    )
    log_format: Literal["text", "json"] = Field("text", description="Log lines as plain text or as JSON objects.")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field("INFO", description="The lowest level logged.")
    event_loop: Literal["auto", "asyncio", "uvloop"] = Field(
        "auto", description="The event loop: auto takes uvloop when it is installed (it is a dependency)."
    )
    http_parser: Literal["auto", "h11", "httptools"] = Field(
        "auto", description="The HTTP/1.1 parser: auto takes httptools when it is installed (it is a dependency)."
    )
    access_log: bool = Field(False, description="Log one line per HTTP request (uvicorn's access log).")
    gc_threshold: int = Field(
        5_000,
        ge=0,
        description="The Python collector's generation-0 threshold (700 is Python's default; higher means fewer "
        "collections, each one longer: a pause in every request in flight); 0 leaves Python's default.",
    )

    @field_validator(
        "allowed_hosts",
        "allowed_origins",
        "request_state_keys",
        "redis_sentinels",
        "oauth_audiences",
        "oauth_required_scopes",
        "oauth_scopes_supported",
        "oauth_algorithms",
        mode="before",
    )
    @classmethod
    def _split_commas(cls, value: object) -> object:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @model_validator(mode="after")
    def _redis_needs_url(self) -> RuntimeSettings:
        if bool(self.redis_sentinels) != bool(self.redis_sentinel_master):
            raise ValueError("MCP_REDIS_SENTINELS and MCP_REDIS_SENTINEL_MASTER go together: set both or neither")
        for address in self.redis_sentinels:
            sentinel_address(address)
        if self.session_backend == "redis" and not self.redis_url and not self.redis_sentinels:
            raise ValueError(
                "MCP_SESSION_BACKEND=redis needs MCP_REDIS_URL, or MCP_REDIS_SENTINELS and MCP_REDIS_SENTINEL_MASTER"
            )
        if self.session_backend == "redis" and not self.all_request_state_keys():
            raise ValueError(
                "MCP_SESSION_BACKEND=redis serves several replicas, and a retry of a modern-era request may land "
                "on another replica than the one that sealed its requestState: set the same "
                "MCP_REQUEST_STATE_KEYS or MCP_REQUEST_STATE_KEYS_FILE on every replica"
            )
        short = [k for k in self.all_request_state_keys() if len(k.encode()) < 32]
        if short:
            raise ValueError(
                "MCP_REQUEST_STATE_KEYS: every key needs at least 32 bytes of secret randomness "
                '(python -c "import secrets; print(secrets.token_hex(32))")'
            )
        if self.redis_url and not self.redis_url.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("MCP_REDIS_URL must start with redis://, rediss:// or unix://")
        self._check_oauth()
        return self

    def _check_oauth(self) -> None:
        if bool(self.oauth_issuer) != bool(self.oauth_resource):
            raise ValueError("MCP_OAUTH_ISSUER and MCP_OAUTH_RESOURCE go together: set both or neither")
        for name, url in (("MCP_OAUTH_ISSUER", self.oauth_issuer), ("MCP_OAUTH_RESOURCE", self.oauth_resource)):
            if url and not url.startswith(("https://", "http://")):
                raise ValueError(f"{name} must be an http(s) URL")
        if bool(self.oauth_introspection_client_id) != bool(self.oauth_introspection_client_secret_file):
            raise ValueError(
                "MCP_OAUTH_INTROSPECTION_CLIENT_ID and MCP_OAUTH_INTROSPECTION_CLIENT_SECRET_FILE go together"
            )
        if not self.oauth_issuer and (self.oauth_tool_scopes or self.oauth_required_scopes):
            raise ValueError("MCP_OAUTH_TOOL_SCOPES and MCP_OAUTH_REQUIRED_SCOPES need MCP_OAUTH_ISSUER")
        allowed = {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}
        unsafe = sorted(set(self.oauth_algorithms) - allowed)
        if unsafe or not self.oauth_algorithms:
            raise ValueError(
                f"MCP_OAUTH_ALGORITHMS: {', '.join(unsafe) or 'none given'}; only asymmetric signature algorithms "
                f"are accepted ({', '.join(sorted(allowed))})"
            )

    @field_validator(
        "auth_token_file", "redis_password_file", "request_state_keys_file", "oauth_introspection_client_secret_file"
    )
    @classmethod
    def _token_file_readable(cls, value: Path | None) -> Path | None:
        if value is not None and not value.is_file():
            raise ValueError(f"no readable file at {value}")
        return value

    def all_request_state_keys(self) -> list[str]:
        """MCP_REQUEST_STATE_KEYS, then the keys in MCP_REQUEST_STATE_KEYS_FILE (the first seals)."""
        keys = list(self.request_state_keys)
        if self.request_state_keys_file is not None:
            lines = self.request_state_keys_file.read_text().splitlines()
            keys += [line.strip() for line in lines if line.strip() and not line.startswith("#")]
        return keys

    @classmethod
    def env_name(cls, field: str) -> str:
        return f"{ENV_PREFIX}{field.upper()}"

    @classmethod
    def env_var(cls, field: str, value: object) -> dict[str, str]:
        """One setting as an environment variable, `{"name": ..., "value": ...}` (the shape of a container's
        EnvVar): the one rendering of a value, lists comma-separated, mappings as JSON and booleans as true or
        false. KeyError
        when `field` is not a setting."""
        if field not in cls.model_fields:
            raise KeyError(f"{field} is not a setting of mcp-runtime")
        if isinstance(value, bool):
            rendered = "true" if value else "false"
        elif isinstance(value, list | tuple):
            rendered = ",".join(str(item) for item in value)
        elif isinstance(value, dict):
            rendered = json.dumps(value, separators=(",", ":"), sort_keys=True)
        else:
            rendered = str(value)
        return {"name": cls.env_name(field), "value": rendered}

    def to_env(self) -> dict[str, str]:
        """The environment that reproduces these settings (what the operator renders into a pod)."""
        env: dict[str, str] = {}
        for name, value in self.model_dump(mode="json").items():
            if value is not None:
                variable = self.env_var(name, value)
                env[variable["name"]] = variable["value"]
        return env


def sentinel_address(address: str) -> tuple[str, int]:
    """host:port (or [v6]:port) of a Sentinel; ValueError naming the entry when it is not one."""
    host, sep, port = address.rpartition(":")
    host = host.removeprefix("[").removesuffix("]")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"MCP_REDIS_SENTINELS: {address!r} is not host:port")
    return host, int(port)


class SettingsError(Exception):
    """A setting could not be read; the message names the environment variable."""


def describe_errors(error: ValidationError) -> str:
    lines = []
    for item in error.errors():
        if not item["loc"]:
            lines.append(str(item["msg"]).removeprefix("Value error, "))
            continue
        field = str(item["loc"][0])
        lines.append(f"{RuntimeSettings.env_name(field)}: {item['msg']} (got {item.get('input')!r})")
    return "invalid settings:\n  " + "\n  ".join(lines)


def load_settings() -> RuntimeSettings:
    """Read the settings from the environment, or raise SettingsError naming each bad variable."""
    try:
        return RuntimeSettings()
    except ValidationError as error:
        raise SettingsError(describe_errors(error)) from None
