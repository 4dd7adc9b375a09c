"""Live transports: the part of a handshake-era session that exists in one process only.

A session's record lives in the backend; its live transport (the SDK's transport, dispatcher and connection)
is a cache of it in this replica, built from the record on the first request that needs it. The rules that
keep this cache safe when a session's requests arrive together:

- single flight: while a session is being built here, every other request for it waits for that build and
  uses it (one build per session per replica at a time);
- a request holds the live session while it is served (`in_flight`): a live session with requests in flight
  is never terminated, replaced or released;
- a live session is released after `idle_seconds` with nothing in flight, or retired at once (DELETE,
  expiry, record gone): either way it leaves the registry first, so the next request builds a new one, and
  its transport ends only when the last request in flight is done.

The SDK's own idle timer is not used: it cancels a session while a request may be about to enter it.
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import anyio
from anyio.abc import TaskGroup, TaskStatus
from mcp.server.connection import Connection
from mcp.server.lowlevel.server import Server
from mcp.server.runner import serve_connection
from mcp.server.streamable_http import StreamableHTTPServerTransport
from mcp.server.transport_security import TransportSecuritySettings
from mcp.shared.jsonrpc_dispatcher import JSONRPCDispatcher
from mcp.shared.transport_context import TransportContext
from mcp_types import InitializeRequestParams

from mcp_runtime.backends import SessionRecord
from mcp_runtime.sdk.surface import start_ids_at
from mcp_runtime.sessions.event_store import SessionEventStore
from mcp_runtime.sessions.events import SessionEvents
from mcp_runtime.sessions.held_answers import HeldAnswers

logger = logging.getLogger(__name__)

# Server-to-client request ids: a random prefix per process (so ids from different replicas never collide
# and an answer's id tells which replica asked), then a block per live session, all below 2**53.
PREFIX_SHIFT = 32
BLOCK_BITS = 16

# The SDK transports do no Host/Origin checks of their own: the runtime's RequestGuard already did them.
NO_TRANSPORT_CHECKS = TransportSecuritySettings(enable_dns_rebinding_protection=False)


class SessionGone(Exception):
    """The session is unknown, expired, deleted, or was never fully established."""


@dataclass(eq=False)
class LiveSession:
    session_id: str
    transport: StreamableHTTPServerTransport
    id_base: int
    store: SessionEventStore | None = None  # keeps what its SSE streams send
    owner: str | None = None
    connection: Connection | None = None
    in_flight: int = 0
    retired: bool = False  # takes no new request; its transport ends when nothing is in flight
    idle_since: float = field(default_factory=time.monotonic)
    request_keys: set[str] = field(default_factory=set)  # JSON-RPC ids of the requests being served
    ready: anyio.Event = field(default_factory=anyio.Event)
    failure: Exception | None = None
    scope: anyio.CancelScope | None = None  # around the connection; cancelled to end the transport
    timer: asyncio.TimerHandle | None = None  # the idle check, while nothing is in flight

    def end(self) -> None:
        """End the transport (called only with nothing in flight)."""
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        if self.scope is not None:
            self.scope.cancel()

    def asked_here(self, request_id: object) -> bool:
        return (
            isinstance(request_id, int)
            and not isinstance(request_id, bool)
            and self.id_base < request_id < self.id_base + (1 << BLOCK_BITS)
        )


class LiveSessions:
    """This process's live sessions, by session id."""

    def __init__(
        self,
        server: Server[Any],
        events: SessionEvents,
        *,
        json_response: bool,
        idle_seconds: float,
        runner: str,
        retry_ms: int | None = None,
        stream_idle_close_seconds: float | None = None,
        on_count: Callable[[int], None] = lambda _: None,
        held: HeldAnswers | None = None,
    ) -> None:
        self.server = server
        self.held = held
        self.events = events
        self.json_response = json_response
        self.idle_seconds = idle_seconds
        self.runner = runner
        self.retry_ms = retry_ms
        self.stream_idle_close_seconds = stream_idle_close_seconds
        self._on_count = on_count
        self._live: dict[str, LiveSession] = {}
        self._prefix = secrets.randbelow((1 << 20) - 1) + 1
        self._blocks = 0
        self._task_group: TaskGroup | None = None
        self._lifespan_state: Any = None
        self.released_since_collect = 0

    def bind(self, task_group: TaskGroup | None, lifespan_state: Any = None) -> None:
        self._task_group = task_group
        self._lifespan_state = lifespan_state
        if task_group is None:
            self._live.clear()

    def __len__(self) -> int:
        return len(self._live)

    def get(self, session_id: str) -> LiveSession | None:
        return self._live.get(session_id)

    def sessions(self) -> list[LiveSession]:
        return list(self._live.values())

    def asked_here(self, request_id: object) -> bool:
        """Whether a server-to-client request id was minted by this process."""
        return (
            isinstance(request_id, int)
            and not isinstance(request_id, bool)
            and request_id >> PREFIX_SHIFT == self._prefix
        )

    # Using a live session

    async def acquire(self, session_id: str, load: Callable[[], Awaitable[SessionRecord | None]]) -> LiveSession:
        """The session's live transport, built from `load()`'s record if it is not live here, held (in flight)
        until `release`. Raises SessionGone, or whatever `load` raises (BackendUnavailable)."""
        live = self._live.get(session_id)
        building = live is None
        if live is None:
            live = self._register(session_id)
        live.in_flight += 1
        try:
            if building:
                await self._build(live, load)
            else:
                if not live.ready.is_set():  # (waiting on a set anyio Event would still yield to the loop)
                    await live.ready.wait()
                if live.failure is not None:
                    raise live.failure
        except BaseException:
            self.release(live)
            raise
        return live

    async def open(self, session_id: str, owner: str | None) -> LiveSession:
        """A new session's live transport (its initialize is about to be served), held until `release`."""
        live = self._register(session_id)
        live.owner = owner
        live.in_flight += 1
        try:
            await self._build(live, None)
        except BaseException:
            self.release(live)
            raise
        return live

    def release(self, live: LiveSession) -> None:
        """A request is done with the live session."""
        live.in_flight -= 1
        if live.in_flight == 0:
            live.idle_since = time.monotonic()
            if live.retired:
                live.end()
            elif live.timer is None:
                self._check_idle_later(live, self.idle_seconds)

    def retire(self, session_id: str) -> None:
        """The session ended: no new request enters its live transport, which ends once nothing is in flight."""
        live = self._live.pop(session_id, None)
        if live is not None:
            live.retired = True
            self._on_count(len(self._live))
            if live.in_flight == 0:
                live.end()

    def _check_idle_later(self, live: LiveSession, delay: float) -> None:
        live.timer = asyncio.get_running_loop().call_later(delay, self._check_idle, live)

    def _check_idle(self, live: LiveSession) -> None:
        """The idle timer (a loop callback, no task): release the transport if nothing came since."""
        live.timer = None
        if live.in_flight or live.retired:
            return  # in use (its last release re-arms the timer), or already ending
        left = live.idle_since + self.idle_seconds - time.monotonic()
        if left > 0:
            self._check_idle_later(live, left)
            return
        self._discard(live)  # in the same step as the check: no request can slip in between
        live.end()

    def _register(self, session_id: str) -> LiveSession:
        # (With JSON answers, a POST's answer is whole or not at all: only the GET stream's messages are kept.)
        store = SessionEventStore(
            session_id,
            self.events,
            self.runner,
            post_streams=not self.json_response,
            idle_close_seconds=self.stream_idle_close_seconds,
            held=self.held,
        )
        transport = StreamableHTTPServerTransport(
            mcp_session_id=session_id,
            is_json_response_enabled=self.json_response,
            event_store=store,
            security_settings=NO_TRANSPORT_CHECKS,
            retry_interval=self.retry_ms,
        )
        store.close_stream = transport.close_sse_stream
        self._blocks = (self._blocks + 1) % (1 << (PREFIX_SHIFT - BLOCK_BITS))
        id_base = (self._prefix << PREFIX_SHIFT) + (self._blocks << BLOCK_BITS)
        live = LiveSession(session_id, transport, id_base, store)
        self._live[session_id] = live
        self._on_count(len(self._live))
        return live

    def _discard(self, live: LiveSession) -> None:
        live.retired = True
        if self._live.get(live.session_id) is live:
            del self._live[live.session_id]
            self._on_count(len(self._live))

    async def _build(self, live: LiveSession, load: Callable[[], Awaitable[SessionRecord | None]] | None) -> None:
        try:
            record = None
            if load is not None:
                record = await load()
                if record is None or record.protocol_version is None:
                    raise SessionGone(live.session_id)
                live.owner = record.owner
            if self._task_group is None:
                raise RuntimeError("the session manager is not running")
            await self.events.watch(live.session_id)
            try:
                await self._task_group.start(self._run, live, record)
            except BaseException:
                with anyio.CancelScope(shield=True):
                    await self.events.unwatch(live.session_id)
                raise
        except BaseException as error:
            live.failure = error if isinstance(error, Exception) else SessionGone(live.session_id)
            self._discard(live)
            raise
        finally:
            live.ready.set()

    # A live session's life

    async def _run(self, live: LiveSession, record: SessionRecord | None, *, task_status: TaskStatus[None]) -> None:
        transport = live.transport
        try:
            with anyio.CancelScope() as live.scope:
                async with transport.connect() as (read_stream, write_stream):
                    dispatcher: JSONRPCDispatcher[TransportContext] = JSONRPCDispatcher(
                        read_stream, write_stream, inline_methods=frozenset({"initialize"})
                    )
                    start_ids_at(dispatcher, live.id_base)
                    connection = Connection.for_loop(
                        dispatcher,
                        session_id=live.session_id,
                        protocol_version_hint=record.protocol_version if record else None,
                    )
                    if record is not None:
                        restore(connection, record)
                    live.connection = connection
                    # What the session sends outside any request is kept by the event store, which publishes it
                    # to whichever replica holds the session's GET stream.
                    task_status.started()
                    await serve_connection(
                        self.server, dispatcher, connection=connection, lifespan_state=self._lifespan_state
                    )
        except Exception:
            logger.exception("session %s crashed", live.session_id[:64])
        finally:
            self._discard(live)
            if live.store is not None:
                live.store.ended()
            if live.timer is not None:
                live.timer.cancel()
                live.timer = None
            self.released_since_collect += 1
            with anyio.CancelScope(shield=True):
                if not transport.is_terminated:
                    await transport.terminate()
                await self.events.unwatch(live.session_id)


def restore(connection: Connection, record: SessionRecord) -> None:
    """Make a fresh connection what the session's initialize made it, without a new handshake."""
    assert record.protocol_version is not None
    if record.client_params:
        connection.client_params = InitializeRequestParams.model_validate(json.loads(record.client_params))
    connection.protocol_version = record.protocol_version
    connection.initialized.set()
