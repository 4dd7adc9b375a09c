"""The runtime's ASGI application: `/mcp` beside `/healthz`, `/readyz` and `/metrics`.

Built by `compose.build_runtime`; this module only routes and runs what it is given.

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

from mcp_runtime import state
from mcp_runtime.backends import BackendRefused, BackendUnavailable, SessionBackend
from mcp_runtime.lifecycle import Lifecycle
from mcp_runtime.metrics import CONTENT_TYPE_LATEST, RuntimeMetrics
from mcp_runtime.sessions.manager import SessionManager
from mcp_runtime.settings import RuntimeSettings
from mcp_runtime.web.body import BodyTooLarge, ClientGone, read_body, replay
from mcp_runtime.web.errors import error_response
from mcp_runtime.web.guard import PRINCIPAL_KEY, RequestGuard, current_principal
from mcp_runtime.web.head import RequestHead, read_head
from mcp_runtime.web.oauth.metadata import PROTECTED_RESOURCE
from mcp_runtime.web.sends import closing_connection

logger = logging.getLogger(__name__)


class RuntimeApp:
    """One MCP server, served at `/mcp` with its probes and metrics."""

    def __init__(
        self,
        settings: RuntimeSettings,
        *,
        metrics: RuntimeMetrics,
        lifecycle: Lifecycle,
        backend: SessionBackend,
        guard: RequestGuard,
        manager: SessionManager,
        path: str = "/mcp",
    ) -> None:
        self.settings = settings
        self.path = path
        self.metrics = metrics
        self.lifecycle = lifecycle
        self.backend = backend
        self.guard = guard
        self.manager = manager

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "lifespan":
            await self._lifespan(receive, send)
            return
        if kind != "http":
            return
        if self.lifecycle.draining:
            send = closing_connection(send)
        path = scope["path"]
        if path == self.path or path == self.path + "/":
            await self._mcp(scope, receive, send)
        elif path == "/healthz":
            await JSONResponse({"status": "ok"})(scope, receive, send)
        elif path == "/readyz":
            await self._readyz(scope, receive, send)
        elif path.startswith(PROTECTED_RESOURCE) and self.guard.oauth is not None:
            await self._resource_metadata(path, scope, receive, send)
        elif path == "/metrics":
            await Response(self.metrics.render(), media_type=CONTENT_TYPE_LATEST)(scope, receive, send)
        else:
            await error_response(404, f"Not found: {path[:200]}")(scope, receive, send)

    async def _resource_metadata(self, path: str, scope: Scope, receive: Receive, send: Send) -> None:
        """RFC 9728: at the well-known path, and at it with the MCP endpoint's path appended (what clients ask
        first, given the resource's URL)."""
        oauth = self.guard.oauth
        assert oauth is not None
        if path not in (PROTECTED_RESOURCE, PROTECTED_RESOURCE + self.path):
            await error_response(404, f"Not found: {path[:200]}")(scope, receive, send)
            return
        headers = {"Cache-Control": "max-age=300", "Access-Control-Allow-Origin": "*"}
        await JSONResponse(oauth.document(), headers=headers)(scope, receive, send)

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
        principal = await self.guard.authenticate(head)
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
                body = await read_body(receive, limit)  # in time, or a disconnect (web/limits.py)
            except BodyTooLarge:
                await error_response(413, f"Request body larger than {limit} bytes")(scope, receive, send)
                return
            except ClientGone:
                return
            receive = replay(body, receive)
            refusal = self.guard.check_tool_call(principal, body)
            if refusal is not None:
                await refusal(scope, receive, send)
                return
        scope[PRINCIPAL_KEY] = principal  # for the app's tools, whichever era (`mcp_runtime.state.caller`)
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
        except BackendRefused as error:
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
