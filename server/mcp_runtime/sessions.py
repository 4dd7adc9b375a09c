"""Handshake-era sessions on top of a session backend, and the routing of both protocol eras.

The SDK keeps a session as a live transport in a per-process dict. Here a session is a record in the backend
(what initialize negotiated, the owner, timestamps); the live transport is a cache of it: created on the first
request a process sees for the session, released after `MCP_TRANSPORT_IDLE_SECONDS` without a request, and
rebuilt from the record on the next one, already initialized (`Connection.for_loop` + the stored envelope).
"""

from __future__ import annotations

import contextlib
import gc
import json
import logging
import secrets
import time
import uuid
from collections.abc import AsyncIterator, Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from typing import Any

import anyio
import pydantic_core
from anyio.abc import TaskGroup, TaskStatus
from anyio.streams.memory import MemoryObjectReceiveStream
from mcp.server.connection import Connection
from mcp.server.lowlevel.server import Server
from mcp.server.runner import serve_connection
from mcp.server.streamable_http import GET_STREAM_KEY, EventMessage, StreamableHTTPServerTransport
from mcp.server.transport_security import TransportSecuritySettings
from mcp.shared.jsonrpc_dispatcher import JSONRPCDispatcher
from mcp.shared.message import SessionMessage
from mcp.shared.transport_context import TransportContext
from mcp_types import PARSE_ERROR, InitializeRequestParams, jsonrpc_message_adapter
from starlette.responses import Response
from starlette.types import Message, Receive, Scope, Send

from mcp_runtime.backends import BackendUnavailable, SessionBackend, SessionLimitReached, SessionRecord
from mcp_runtime.jsonrpc_errors import error_response, session_not_found, unavailable
from mcp_runtime.lifecycle import Lifecycle
from mcp_runtime.metrics import RuntimeMetrics
from mcp_runtime.request_head import RequestHead
from mcp_runtime.security import Principal
from mcp_runtime.session_events import SessionEvents
from mcp_runtime.streams import LocalStreamHub, StreamBusy, serve_sse

logger = logging.getLogger(__name__)

STANDALONE_BUFFER = 16
ID_BITS = 20

# The SDK transports do no Host/Origin checks of their own: the runtime's RequestGuard already did them,
# with JSON-RPC error bodies.
_NO_TRANSPORT_CHECKS = TransportSecuritySettings(enable_dns_rebinding_protection=False)


@dataclass(eq=False)
class LiveSession:
    """The part of a session that lives in this process only: its transport and connection."""

    session_id: str
    owner: str | None
    transport: StreamableHTTPServerTransport
    connection: Connection | None = None
    in_flight: int = 0
    envelope_saved: bool = field(default=False)

    def usable(self) -> bool:
        scope = self.transport.idle_scope
        return not self.transport.is_terminated and not (scope is not None and scope.cancel_called)


class SessionManager:
    """Serves the MCP endpoint for one MCP server: handshake-era sessions and 2026-07-28 requests."""

    def __init__(
        self,
        server: Server[Any],
        backend: SessionBackend,
        metrics: RuntimeMetrics,
        lifecycle: Lifecycle,
        *,
        json_response: bool,
        transport_idle_seconds: float,
        sweep_interval_seconds: float,
        retry_after_seconds: int,
        hub: LocalStreamHub,
        events: SessionEvents,
        stream_keepalive_seconds: float,
        services: Sequence[Callable[..., Coroutine[Any, Any, None]]] = (),
    ) -> None:
        self.server = server
        self.backend = backend
        self.metrics = metrics
        self.lifecycle = lifecycle
        self.json_response = json_response
        self.transport_idle_seconds = transport_idle_seconds
        self.sweep_interval_seconds = sweep_interval_seconds
        self.retry_after = retry_after_seconds
        self.hub = hub
        self.events = events
        # Server-to-client request ids start at a random base of this process's, so that ids from different
        # replicas never collide and an answer's id tells which replica asked.
        self._id_base = secrets.randbits(31) << ID_BITS
        self.stream_keepalive_seconds = stream_keepalive_seconds
        self.services = list(services)  # background tasks of the runtime, run while the manager runs
        self._live: dict[str, LiveSession] = {}
        self._released_since_sweep = 0
        self._task_group: TaskGroup | None = None
        self._lifespan_state: Any = None

    @contextlib.asynccontextmanager
    async def run(self) -> AsyncIterator[None]:
        async with self.server.lifespan(self.server) as lifespan_state, anyio.create_task_group() as tg:
            self._lifespan_state = lifespan_state
            self._task_group = tg
            await tg.start(self._run_events)
            for service in self.services:
                await tg.start(service)
            tg.start_soon(self._sweep_forever)
            try:
                yield
            finally:
                tg.cancel_scope.cancel()
                self._task_group = None
                self._live.clear()

    @property
    def live_count(self) -> int:
        return len(self._live)

    # Routing

    async def handle(
        self, head: RequestHead, scope: Scope, receive: Receive, send: Send, body: bytes, principal: Principal
    ) -> None:
        """Serve one request to the MCP endpoint (headers already checked, body already read)."""
        if head.modern:
            await self._handle_modern(scope, receive, send)
            return
        session_id = head.session_id
        if session_id is None:
            await self._open_session(scope, receive, send, body, principal)
        elif head.method == "DELETE":
            await self._delete_session(session_id, scope, receive, send, principal)
        elif head.method == "GET":
            await self._serve_get_stream(session_id, head, scope, receive, send, principal)
        elif head.method == "POST" and b'"method"' not in body and await self._forward_answer(session_id, body):
            await Response(status_code=202)(scope, receive, send)
        else:
            await self._serve_session(session_id, scope, receive, send, principal)

    async def _handle_modern(self, scope: Scope, receive: Receive, send: Send) -> None:
        from mcp.server._streamable_http_modern import handle_modern_request

        await handle_modern_request(
            self.server, _NO_TRANSPORT_CHECKS, self.json_response, self._lifespan_state, scope, receive, send
        )

    # Opening a session

    async def _open_session(self, scope: Scope, receive: Receive, send: Send, body: bytes, who: Principal) -> None:
        if scope["method"] != "POST":
            await error_response(400, "Bad Request: Missing session ID")(scope, receive, send)
            return
        try:
            message = pydantic_core.from_json(body)
        except ValueError as error:
            await error_response(400, f"Parse error: {error}", code=PARSE_ERROR)(scope, receive, send)
            return
        if not (isinstance(message, dict) and message.get("method") == "initialize"):
            await error_response(400, "Bad Request: Missing session ID")(scope, receive, send)
            return
        if self.lifecycle.draining:
            self.metrics.rejected("draining")
            await unavailable("Server is shutting down; open the session on another replica", self.retry_after)(
                scope, receive, send
            )
            return

        session_id = uuid.uuid4().hex
        now = time.monotonic()
        record = SessionRecord(session_id, who.client_key, who.owner, now, now)
        try:
            await self.backend.admit(record)
        except SessionLimitReached as refused:
            self.metrics.rejected(f"{refused.scope}_limit")
            logger.warning("refused a new session: %s", refused)
            await unavailable(str(refused), self.retry_after)(scope, receive, send)
            return
        except BackendUnavailable as error:
            self.metrics.rejected("backend_unavailable")
            await unavailable(f"Session store unavailable: {error}", self.retry_after)(scope, receive, send)
            return

        established = False
        try:
            live = await self._start_live(session_id, who.owner, None)
            status = await self._serve_live(live, scope, receive, send)
            established = status is not None and status < 400 and live.connection is not None
            if established:
                await self._save_envelope(live)
        finally:
            if not established:
                with anyio.CancelScope(shield=True):
                    await self.backend.delete(session_id)
                    await self._drop_live(session_id)
        if not established:
            return
        self.metrics.sessions_created.inc()
        self.metrics.sessions_active.set(await self.backend.count())
        logger.info("session opened", extra={"session": session_id})

    async def _save_envelope(self, live: LiveSession) -> None:
        connection = live.connection
        if live.envelope_saved or connection is None or connection.client_params is None:
            return
        live.envelope_saved = True
        params = connection.client_params.model_dump_json(by_alias=True, exclude_none=True)
        await self.backend.complete(live.session_id, connection.protocol_version, params)

    # Serving a session

    async def _serve_session(self, session_id: str, scope: Scope, receive: Receive, send: Send, who: Principal) -> None:
        live = self._live.get(session_id)
        if live is not None and live.usable():
            if live.owner != who.owner or not await self.backend.touch(session_id):
                if live.owner == who.owner:  # expired or deleted underneath us
                    await self._drop_live(session_id)
                await session_not_found()(scope, receive, send)
                return
        else:
            record = await self.backend.get(session_id)
            if record is None or record.owner != who.owner or record.protocol_version is None:
                await session_not_found()(scope, receive, send)
                return
            live = await self._start_live(session_id, record.owner, record)
            self.metrics.sessions_restored.inc()
        await self._serve_live(live, scope, receive, send)

    async def _serve_live(self, live: LiveSession, scope: Scope, receive: Receive, send: Send) -> int | None:
        """Let the live transport answer; returns the status while the session's envelope is not yet saved."""
        status: int | None = None
        target = send
        if not live.envelope_saved:

            async def watch(message: Message) -> None:
                nonlocal status
                if message["type"] == "http.response.start":
                    status = message["status"]
                elif not live.envelope_saved and message.get("body"):
                    # The initialize result is about to reach the client: the record must be complete first,
                    # so that the client's next request can be served by any replica.
                    await self._save_envelope(live)
                await send(message)

            target = watch
        live.in_flight += 1
        try:
            await live.transport.handle_request(scope, receive, target)
        finally:
            live.in_flight -= 1
        return status

    async def _delete_session(
        self, session_id: str, scope: Scope, receive: Receive, send: Send, who: Principal
    ) -> None:
        record = await self.backend.get(session_id)
        if record is None or record.owner != who.owner:
            await session_not_found()(scope, receive, send)
            return
        await self.backend.delete(session_id)
        await self._drop_live(session_id)
        self.hub.close(session_id)
        await self.events.send(session_id, {"t": "ended"})
        self.metrics.sessions_deleted.inc()
        self.metrics.sessions_active.set(await self.backend.count())
        logger.info("session deleted", extra={"session": session_id})
        await Response(status_code=200)(scope, receive, send)

    # Across replicas

    def _asked_here(self, request_id: object) -> bool:
        return isinstance(request_id, int) and self._id_base <= request_id < self._id_base + (1 << ID_BITS)

    async def _forward_answer(self, session_id: str, body: bytes) -> bool:
        """A client's answer to a server-to-client request asked by another replica: pass it there."""
        try:
            message = pydantic_core.from_json(body)
        except ValueError:
            return False
        if not (isinstance(message, dict) and "id" in message and ("result" in message or "error" in message)):
            return False
        if self._asked_here(message["id"]) or not isinstance(message["id"], int):
            return False
        record = await self.backend.get(session_id)
        if record is None:
            return False  # let the normal path answer 404
        await self.events.send(session_id, {"t": "answer", "m": body.decode()})
        self.metrics.answers_forwarded.inc()
        return True

    async def _run_events(self, *, task_status: TaskStatus[None]) -> None:
        await self.events.run(self._on_event, task_status=task_status)

    async def _on_event(self, session_id: str, event: dict[str, Any]) -> None:
        kind = event.get("t")
        if kind == "message":
            self.hub.deliver(session_id, event.get("id"), event["m"])
        elif kind == "answer":
            live = self._live.get(session_id)
            message = jsonrpc_message_adapter.validate_json(event["m"])
            if live is not None and self._asked_here(getattr(message, "id", None)):
                writer = live.transport._read_stream_writer
                if writer is not None:
                    await writer.send(SessionMessage(message))
        elif kind == "ended":
            await self._drop_live(session_id)
            self.hub.close(session_id)

    # GET streams

    async def _serve_get_stream(
        self, session_id: str, head: RequestHead, scope: Scope, receive: Receive, send: Send, who: Principal
    ) -> None:
        accept = (head.accept or "").lower()
        if "text/event-stream" not in accept and "text/*" not in accept and "*/*" not in accept:
            await error_response(406, "Not Acceptable: Client must accept text/event-stream")(scope, receive, send)
            return
        record = await self.backend.get(session_id)
        if record is None or record.owner != who.owner or record.protocol_version is None:
            await session_not_found()(scope, receive, send)
            return
        try:
            subscription = self.hub.subscribe(session_id)
            messages = subscription.__enter__()
        except StreamBusy:
            await error_response(409, "Conflict: Only one SSE stream is allowed per session")(scope, receive, send)
            return
        await self.events.watch(session_id)
        try:
            # Watch first, then read the log: nothing published in between is lost (duplicates are skipped).
            replayed = await self.events.replay(session_id, head.last_event_id) if head.last_event_id else []
            await serve_sse(messages, session_id, self.stream_keepalive_seconds, receive, send, replayed)
        finally:
            subscription.__exit__(None, None, None)
            with anyio.CancelScope(shield=True):
                await self.events.unwatch(session_id)

    async def _forward_standalone(self, session_id: str, messages: MemoryObjectReceiveStream[EventMessage]) -> None:
        """Hand what the session sends outside any request (notifications) to whoever holds its GET stream."""
        async with messages:
            async for event in messages:
                payload = event.message.model_dump_json(by_alias=True, exclude_unset=True)
                try:
                    event_id = await self.events.append(session_id, payload)
                    await self.events.send(session_id, {"t": "message", "id": event_id, "m": payload})
                except BackendUnavailable as error:
                    logger.warning("session %s: a server message was lost: %s", session_id[:64], error)

    # Live transports

    async def _start_live(self, session_id: str, owner: str | None, record: SessionRecord | None) -> LiveSession:
        assert self._task_group is not None, "SessionManager.run() is not active"
        transport = StreamableHTTPServerTransport(
            mcp_session_id=session_id,
            is_json_response_enabled=self.json_response,
            security_settings=_NO_TRANSPORT_CHECKS,
            idle_timeout=self.transport_idle_seconds,
        )
        live = LiveSession(session_id, owner, transport, envelope_saved=record is not None)
        previous = self._live.get(session_id)
        self._live[session_id] = live
        if previous is not None:
            await self._terminate(previous)
        await self.events.watch(session_id)
        try:
            await self._task_group.start(self._run_live, live, record)
        except BaseException:
            await self.events.unwatch(session_id)
            raise
        self.metrics.transports_live.set(len(self._live))
        return live

    async def _run_live(
        self, live: LiveSession, record: SessionRecord | None, *, task_status: TaskStatus[None]
    ) -> None:
        transport = live.transport
        try:
            async with transport.connect() as (read_stream, write_stream):
                dispatcher: JSONRPCDispatcher[TransportContext] = JSONRPCDispatcher(
                    read_stream, write_stream, inline_methods=frozenset({"initialize"})
                )
                dispatcher._next_id = self._id_base
                connection = Connection.for_loop(
                    dispatcher,
                    session_id=live.session_id,
                    protocol_version_hint=record.protocol_version if record else None,
                )
                if record is not None:
                    _restore(connection, record)
                live.connection = connection
                # Standalone messages go to the hub instead of a GET stream inside the transport.
                standalone = anyio.create_memory_object_stream[EventMessage](STANDALONE_BUFFER)
                transport._request_streams[GET_STREAM_KEY] = standalone
                task_status.started()
                idle_scope = transport.idle_scope or anyio.CancelScope()
                async with anyio.create_task_group() as tg:
                    tg.start_soon(self._forward_standalone, live.session_id, standalone[1])
                    with idle_scope:
                        await serve_connection(
                            self.server, dispatcher, connection=connection, lifespan_state=self._lifespan_state
                        )
                    tg.cancel_scope.cancel()
        except Exception:
            logger.exception("session %s crashed", live.session_id)
        finally:
            if self._live.get(live.session_id) is live:
                del self._live[live.session_id]
                self.metrics.transports_live.set(len(self._live))
            self._released_since_sweep += 1
            await self._terminate(live)
            with anyio.CancelScope(shield=True):
                await self.events.unwatch(live.session_id)

    async def _drop_live(self, session_id: str) -> None:
        live = self._live.pop(session_id, None)
        if live is not None:
            self.metrics.transports_live.set(len(self._live))
            await self._terminate(live)

    @staticmethod
    async def _terminate(live: LiveSession) -> None:
        if not live.transport.is_terminated:
            with anyio.CancelScope(shield=True):
                await live.transport.terminate()

    # Expiry

    async def sweep(self) -> int:
        """Keep sessions with a request in flight (an open GET stream) alive; drop the expired ones."""
        for live in list(self._live.values()):
            if live.in_flight:
                await self.backend.touch(live.session_id)
        for session_id in self.hub.subscribed():
            await self.backend.touch(session_id)
        expired = await self.backend.sweep()
        for session_id in expired:
            await self._drop_live(session_id)
            self.hub.close(session_id)
            await self.events.send(session_id, {"t": "ended"})
        if expired:
            self.metrics.sessions_expired.inc(len(expired))
            logger.info("expired %d idle sessions", len(expired))
        self.metrics.sessions_active.set(await self.backend.count())
        if self._released_since_sweep:
            # A released transport is a cycle of tasks, scopes and streams: only the cyclic collector frees
            # it, and with a raised MCP_GC_THRESHOLD it would wait long. Collect once a sweep, when needed.
            self._released_since_sweep = 0
            gc.collect()
        return len(expired)

    async def _sweep_forever(self) -> None:
        while True:
            await anyio.sleep(self.sweep_interval_seconds)
            try:
                await self.sweep()
            except BackendUnavailable as error:
                logger.warning("sweep skipped: %s", error)
            except Exception:
                logger.exception("sweep failed")


def _restore(connection: Connection, record: SessionRecord) -> None:
    """Make a fresh connection what the session's initialize made it, without a new handshake."""
    assert record.protocol_version is not None
    if record.client_params:
        connection.client_params = InitializeRequestParams.model_validate(json.loads(record.client_params))
    connection.protocol_version = record.protocol_version
    connection.initialized.set()
