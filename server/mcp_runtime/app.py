"""The runtime's ASGI application: `/mcp` beside `/healthz`, `/readyz` and `/metrics`.

A small router of its own rather than Starlette's: every MCP request passes through it, and it does only
what is needed (guard, authenticate, read the body once, count, time).
"""

from __future__ import annotations

import gc
import logging
import os
import signal
import time

from starlette.responses import JSONResponse, Response
from starlette.types import Message, Receive, Scope, Send

from mcp_runtime import fastmcp_state, state
from mcp_runtime.apps import LoadedApp
from mcp_runtime.backends import BackendUnavailable, SessionBackend
from mcp_runtime.backends.memory import MemoryBackend
from mcp_runtime.backends.redis_backend import RedisBackend, RedisClusterRefused
from mcp_runtime.jsonrpc_errors import error_response
from mcp_runtime.lifecycle import Lifecycle
from mcp_runtime.metrics import CONTENT_TYPE_LATEST, RuntimeMetrics
from mcp_runtime.modern import RedisSubscriptionBus, use_request_state_keys
from mcp_runtime.redis_connect import redis_client
from mcp_runtime.request_head import RequestHead, read_head
from mcp_runtime.security import RequestGuard, current_principal, load_tokens
from mcp_runtime.session_events import LocalEvents, RedisEvents, SessionEvents
from mcp_runtime.sessions import SessionManager
from mcp_runtime.settings import RuntimeSettings
from mcp_runtime.streams import LocalStreamHub

logger = logging.getLogger(__name__)


def make_backend(settings: RuntimeSettings, metrics: RuntimeMetrics) -> SessionBackend:
    if settings.session_backend == "redis":
        return RedisBackend(
            redis_client(settings),
            key_prefix=settings.redis_key_prefix,
            session_ttl=settings.session_ttl_seconds,
            max_sessions=settings.max_sessions,
            max_sessions_per_client=settings.max_sessions_per_client,
            replica_name=settings.replica_name,
            timeout=settings.redis_timeout_seconds,
            wait_replicas=settings.redis_wait_replicas,
            wait_timeout=settings.redis_wait_timeout_seconds,
            on_unreplicated=metrics.writes_unreplicated.inc,
        )
    return MemoryBackend(
        session_ttl=settings.session_ttl_seconds,
        max_sessions=settings.max_sessions,
        max_sessions_per_client=settings.max_sessions_per_client,
    )


def make_events(settings: RuntimeSettings, backend: SessionBackend) -> SessionEvents:
    if isinstance(backend, RedisBackend):
        return RedisEvents(
            backend.redis,
            key_prefix=settings.redis_key_prefix,
            log_length=settings.event_log_length,
            log_ttl=settings.session_ttl_seconds,
            timeout=settings.redis_timeout_seconds,
        )
    return LocalEvents()


class BodyTooLarge(Exception):
    pass


class ClientGone(Exception):
    """The client disconnected before its request body was complete: nothing of it is processed."""


async def read_body(receive: Receive, limit: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            raise ClientGone
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


def replay(body: bytes, receive: Receive) -> Receive:
    """A receive that yields the already-read body once, then defers to the real one (for disconnects)."""
    sent = False

    async def receive_again() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return receive_again


class RuntimeApp:
    """One MCP server, served at `/mcp` with its probes and metrics."""

    def __init__(self, app: LoadedApp, settings: RuntimeSettings, path: str = "/mcp") -> None:
        self.settings = settings
        self.path = path
        self.metrics = RuntimeMetrics()
        self.lifecycle = Lifecycle()
        self.backend = make_backend(settings, self.metrics)
        tokens = load_tokens(settings.auth_token_file) if settings.auth_token_file else None
        self.guard = RequestGuard(
            allowed_hosts=settings.allowed_hosts, allowed_origins=settings.allowed_origins, token_digests=tokens
        )
        services = []
        keys = settings.all_request_state_keys()
        if keys:
            use_request_state_keys(app.server, app.name, keys, settings.request_state_ttl_seconds)
        if isinstance(self.backend, RedisBackend) and app.mcpserver is not None:
            bus = RedisSubscriptionBus.install(
                app.mcpserver, self.backend.redis, settings.redis_key_prefix, settings.redis_timeout_seconds
            )
            services.append(bus.relay)
        if app.holder is not None and fastmcp_state.install(app.holder, self.backend):
            logger.info("FastMCP session state kept by the %s session backend", self.backend.name)
        self.app = app
        self.manager = SessionManager(
            app.server,
            self.backend,
            self.metrics,
            self.lifecycle,
            json_response=settings.json_response,
            transport_idle_seconds=settings.transport_idle_seconds,
            sweep_interval_seconds=settings.sweep_interval_seconds,
            stream_check_seconds=settings.stream_check_seconds,
            retry_after_seconds=settings.retry_after_seconds,
            hub=LocalStreamHub(),
            events=make_events(settings, self.backend),
            stream_keepalive_seconds=settings.stream_keepalive_seconds,
            services=services,
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "lifespan":
            await self._lifespan(receive, send)
            return
        if kind != "http":
            return
        path = scope["path"]
        if path == self.path or path == self.path + "/":
            await self._mcp(scope, receive, send)
        elif path == "/healthz":
            await JSONResponse({"status": "ok"})(scope, receive, send)
        elif path == "/readyz":
            await self._readyz(scope, receive, send)
        elif path == "/metrics":
            await Response(self.metrics.render(), media_type=CONTENT_TYPE_LATEST)(scope, receive, send)
        else:
            await error_response(404, f"Not found: {path[:200]}")(scope, receive, send)

    async def _readyz(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.lifecycle.draining:
            await JSONResponse({"ready": False, "reason": "draining"}, status_code=503)(scope, receive, send)
            return
        try:
            backend_ok = await self.backend.ready()
        except BackendUnavailable:
            backend_ok = False
        if not backend_ok:
            reason = f"session backend {self.backend.name} unreachable"
            await JSONResponse({"ready": False, "reason": reason}, status_code=503)(scope, receive, send)
            return
        await JSONResponse({"ready": True})(scope, receive, send)

    async def _mcp(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.perf_counter()
        head = read_head(scope)
        status = 0

        async def send_counted(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        counted = head.method == "POST"
        if counted:
            self.lifecycle.request_started()
            self.metrics.in_flight.inc()
        try:
            await self._mcp_checked(head, scope, receive, send_counted)
        finally:
            if counted:
                self.lifecycle.request_finished()
                self.metrics.in_flight.dec()
            self.metrics.observe_request(head.era, head.method, status, time.perf_counter() - started)

    async def _mcp_checked(self, head: RequestHead, scope: Scope, receive: Receive, send: Send) -> None:
        method = head.method
        if method not in ("POST", "GET", "DELETE"):
            await error_response(405, "Method Not Allowed", headers={"Allow": "GET, POST, DELETE"})(
                scope, receive, send
            )
            return
        refusal = self.guard.check_headers(head)
        if refusal is not None:
            await refusal(scope, receive, send)
            return
        principal = self.guard.authenticate(head)
        if isinstance(principal, Response):
            await principal(scope, receive, send)
            return
        body = b""
        if method == "POST":
            limit = self.settings.max_request_body_bytes
            declared = head.content_length or ""
            try:
                if declared.isdigit() and int(declared) > limit:
                    raise BodyTooLarge
                body = await read_body(receive, limit)  # in time, or a disconnect (http_limits.py)
            except BodyTooLarge:
                await error_response(413, f"Request body larger than {limit} bytes")(scope, receive, send)
                return
            except ClientGone:
                return
            receive = replay(body, receive)
        token = current_principal.set(principal)
        try:
            await self.manager.handle(head, scope, receive, send, body, principal)
        except BackendUnavailable as error:
            await error_response(
                503,
                f"Session store unavailable: {error}",
                code=-32603,
                headers={"Retry-After": str(self.settings.retry_after_seconds)},
            )(scope, receive, send)
        finally:
            current_principal.reset(token)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        message = await receive()
        assert message["type"] == "lifespan.startup"
        try:
            await self.backend.start()
            state.bind(self.backend, self.settings.handle_ttl_seconds)
            running = self.manager.run()
            await running.__aenter__()
        except RedisClusterRefused as error:
            logger.error("%s", error)
            await send({"type": "lifespan.startup.failed", "message": str(error)})
            return
        except Exception as error:
            logger.exception("start-up failed")
            await send({"type": "lifespan.startup.failed", "message": str(error)})
            return
        # Everything alive now (modules, the app) lives as long as the process: keep it out of collections.
        gc.collect()
        gc.freeze()
        await send({"type": "lifespan.startup.complete"})
        try:
            message = await receive()
        except BaseException:
            # Only the session manager's own task group cancels this wait: one of its tasks failed (a bug), and
            # this process can no longer serve sessions. Stop being ready and exit (draining what is in flight),
            # so the replica is restarted instead of answering 500 from now on.
            logger.critical("the session manager stopped; draining and exiting so the replica restarts")
            os.kill(os.getpid(), signal.SIGTERM)
            raise
        try:
            await running.__aexit__(None, None, None)
            await self.backend.close()
        finally:
            state.bind(None, self.settings.handle_ttl_seconds)
            await send({"type": "lifespan.shutdown.complete"})
