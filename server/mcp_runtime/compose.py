"""The composition root: the one place where the runtime's parts are built and wired, from the settings and
the user's app. Everything below it receives what it needs; nothing else constructs a part of another."""

from __future__ import annotations

import logging
from collections.abc import Callable, Coroutine
from functools import partial
from typing import Any

from mcp_runtime.backends import SessionBackend
from mcp_runtime.backends.memory import MemoryBackend
from mcp_runtime.lifecycle import Lifecycle
from mcp_runtime.metrics import RuntimeMetrics
from mcp_runtime.redis_store.backend import RedisBackend
from mcp_runtime.redis_store.bus import RedisSubscriptionBus
from mcp_runtime.redis_store.client import redis_client
from mcp_runtime.redis_store.events import RedisEvents
from mcp_runtime.redis_store.failover import follow_switches
from mcp_runtime.router import RuntimeApp
from mcp_runtime.sdk import fastmcp_state
from mcp_runtime.sdk.loading import LoadedApp
from mcp_runtime.sdk.request_state import use_request_state_keys
from mcp_runtime.sdk.tool_scopes import show_tools_by_scope
from mcp_runtime.sdk.tracing import keep_tracing
from mcp_runtime.sessions.events import LocalEvents, SessionEvents
from mcp_runtime.sessions.expiry import Expiry
from mcp_runtime.sessions.held_answers import HeldAnswers
from mcp_runtime.sessions.live import LiveSessions
from mcp_runtime.sessions.manager import SessionManager
from mcp_runtime.sessions.relay import Relay
from mcp_runtime.sessions.streams import LocalStreamHub
from mcp_runtime.settings import RuntimeSettings
from mcp_runtime.web.guard import RequestGuard, load_tokens
from mcp_runtime.web.oauth.resource import OAuthResource
from mcp_runtime.web.oauth.scopes import ToolScopes

logger = logging.getLogger(__name__)

Service = Callable[..., Coroutine[Any, Any, None]]


def build_runtime(app: LoadedApp, settings: RuntimeSettings, path: str = "/mcp") -> RuntimeApp:
    """The runtime's ASGI application serving `app` at `path`, configured by `settings`."""
    metrics = RuntimeMetrics()
    lifecycle = Lifecycle()
    backend, events, services = _store(app, settings, metrics)
    keys = settings.all_request_state_keys()
    if keys:
        use_request_state_keys(app.server, app.name, keys, settings.request_state_ttl_seconds)
    if app.holder is not None and fastmcp_state.install(app.holder, backend):
        logger.info("FastMCP session state kept by the %s session backend", backend.name)
    if not keep_tracing(app.server, settings.tracing):
        logger.info("no OpenTelemetry tracer configured: requests are served without spans (MCP_TRACING=on keeps them)")
    tokens = load_tokens(settings.auth_token_file) if settings.auth_token_file else None
    oauth = oauth_resource(settings)
    if oauth is not None:
        show_tools_by_scope(app.server, oauth.tool_scopes)
    guard = RequestGuard(
        allowed_hosts=settings.allowed_hosts,
        allowed_origins=settings.allowed_origins,
        token_digests=tokens,
        oauth=oauth,
        retry_after=settings.retry_after_seconds,
    )
    hub = LocalStreamHub()
    # On Redis, an answer delivered on its open stream is held in memory, written only when a client resumes.
    held = HeldAnswers(settings.event_retention_seconds) if isinstance(events, RedisEvents) else None
    live = LiveSessions(
        app.server,
        events,
        json_response=settings.json_response,
        idle_seconds=settings.transport_idle_seconds,
        runner=settings.replica_name,
        retry_ms=settings.sse_retry_ms,
        stream_idle_close_seconds=settings.stream_idle_close_seconds or None,
        on_count=metrics.transports_live.set,
        on_detached=metrics.streams_detached.inc,
        close_get_stream=hub.close_get,
        held=held,
    )
    relay = Relay(events, hub, live, metrics, replica=settings.replica_name, held=held)
    expiry = Expiry(
        backend,
        live,
        hub,
        relay,
        metrics,
        events,
        sweep_interval=settings.sweep_interval_seconds,
        stream_check_interval=settings.stream_check_seconds,
        replica=settings.replica_name,
    )
    manager = SessionManager(
        app.server,
        settings,
        backend=backend,
        metrics=metrics,
        lifecycle=lifecycle,
        events=events,
        hub=hub,
        live=live,
        relay=relay,
        expiry=expiry,
        services=services,
    )
    return RuntimeApp(
        settings, metrics=metrics, lifecycle=lifecycle, backend=backend, guard=guard, manager=manager, path=path
    )


def _store(
    app: LoadedApp, settings: RuntimeSettings, metrics: RuntimeMetrics
) -> tuple[SessionBackend, SessionEvents, list[Service]]:
    """The session backend, the session events between replicas, and the background services they need."""
    if settings.session_backend != "redis":
        memory = MemoryBackend(
            session_ttl=settings.session_ttl_seconds,
            max_sessions=settings.max_sessions,
            max_sessions_per_client=settings.max_sessions_per_client,
            on_expired=metrics.sessions_expired.inc,
        )
        local = LocalEvents(log_length=settings.event_log_length, retention_seconds=settings.event_retention_seconds)
        return memory, local, []
    client = redis_client(settings)
    backend = RedisBackend(
        client,
        key_prefix=settings.redis_key_prefix,
        session_ttl=settings.session_ttl_seconds,
        max_sessions=settings.max_sessions,
        max_sessions_per_client=settings.max_sessions_per_client,
        replica_name=settings.replica_name,
        timeout=settings.redis_timeout_seconds,
        wait_replicas=settings.redis_wait_replicas,
        wait_timeout=settings.redis_wait_timeout_seconds,
        refuse_unreplicated=settings.redis_unreplicated == "refuse",
        on_unreplicated=metrics.writes_unreplicated.inc,
        on_expired=metrics.sessions_expired.inc,
    )
    events = RedisEvents(
        client,
        key_prefix=settings.redis_key_prefix,
        log_length=settings.event_log_length,
        log_ttl=settings.session_ttl_seconds,
        retention=settings.event_retention_seconds,
        timeout=settings.redis_timeout_seconds,
        replica=settings.replica_name,
    )
    services: list[Service] = [partial(events.heartbeat, settings.replica_name)]
    if settings.redis_sentinel_master is not None:
        services.append(partial(follow_switches, client, settings.redis_sentinel_master))
    if app.mcpserver is not None:
        bus = RedisSubscriptionBus.install(
            app.mcpserver, client, settings.redis_key_prefix, settings.redis_timeout_seconds
        )
        services.append(bus.relay)
    return backend, events, services


def oauth_resource(settings: RuntimeSettings) -> OAuthResource | None:
    """This server as an OAuth protected resource, when MCP_OAUTH_ISSUER and MCP_OAUTH_RESOURCE say so."""
    if not settings.oauth_issuer or not settings.oauth_resource:
        return None
    introspection = None
    if settings.oauth_introspection_client_id and settings.oauth_introspection_client_secret_file:
        secret = settings.oauth_introspection_client_secret_file.read_text().strip()
        introspection = (settings.oauth_introspection_client_id, secret)
    tool_scopes = {scope for scopes in settings.oauth_tool_scopes.values() for scope in scopes}
    return OAuthResource(
        resource=settings.oauth_resource,
        issuer=settings.oauth_issuer,
        audiences=settings.oauth_audiences,
        required_scopes=settings.oauth_required_scopes,
        scopes_supported=[*settings.oauth_scopes_supported, *sorted(tool_scopes)],
        algorithms=settings.oauth_algorithms,
        leeway_seconds=settings.oauth_clock_skew_seconds,
        metadata_url=settings.oauth_metadata_url,
        jwks_url=settings.oauth_jwks_url,
        introspection_client=introspection,
        timeout=settings.oauth_timeout_seconds,
        jwks_min_refresh_seconds=settings.oauth_jwks_min_refresh_seconds,
        jwks_max_age_seconds=settings.oauth_jwks_max_age_seconds,
        introspection_cache_seconds=settings.oauth_introspection_cache_seconds,
        tool_scopes=ToolScopes(settings.oauth_tool_scopes),
    )
