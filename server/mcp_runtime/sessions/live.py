"""Live sessions: the part of a handshake-era session that exists in one process only.

A session's record lives in the backend; its live session here (the connection the app's handlers see, its
event store, the server-to-client requests it waits answers for) is a cache of it, built from the record on the
first request that needs it. No transport, task or stream is kept for it: each request is served by its own
task (`exchange.py`). The rules that keep this cache safe when a session's requests arrive together:

- single flight: while a session is being built here, every other request for it waits for that build and
  uses it (one build per session per replica at a time);
- a request holds the live session while it is served (`in_flight`): a live session with requests in flight
  is never ended, replaced or released;
- a live session is released after `idle_seconds` with nothing in flight, or retired at once (DELETE,
  expiry, record gone): either way it leaves the registry first, so the next request builds a new one, and
  it ends only when the last request in flight is done.
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
from anyio.abc import TaskGroup
from mcp.server.connection import Connection
from mcp.server.lowlevel.server import Server
from mcp.server.runner import ServerRunner, aclose_shielded
from mcp_types import ErrorData, InitializeRequestParams

from mcp_runtime.backends import SessionRecord
from mcp_runtime.sessions.event_store import SessionEventStore
from mcp_runtime.sessions.events import SessionEvents
from mcp_runtime.sessions.exchange import PostExchange, SessionOutbound, fail_pending
from mcp_runtime.sessions.held_answers import HeldAnswers

logger = logging.getLogger(__name__)

# Server-to-client request ids: a random prefix per process (so ids from different replicas never collide
# and an answer's id tells which replica asked), then a block per live session, all below 2**53.
PREFIX_SHIFT = 32
BLOCK_BITS = 16


class SessionGone(Exception):
    """The session is unknown, expired, deleted, or was never fully established."""


@dataclass(eq=False)
class LiveSession:
    session_id: str
    id_base: int
    store: SessionEventStore  # keeps what its SSE streams send
    owner: str | None = None
    connection: Connection | None = None
    runner: ServerRunner[Any] = field(init=False)
    in_flight: int = 0
    retired: bool = False  # takes no new request; it ends when nothing is in flight
    ended: bool = False
    idle_since: float = field(default_factory=time.monotonic)
    touched_at: float = 0.0  # when the session was last found (and its expiry renewed) in the store
    touch_epoch: int | None = None  # the session events' epoch then
    request_keys: set[str] = field(default_factory=set)  # JSON-RPC ids of the requests being served
    exchanges: dict[str, PostExchange] = field(default_factory=dict)  # the requests being served, by key
    pending: dict[int, asyncio.Future[dict[str, Any] | ErrorData]] = field(default_factory=dict)
    ready: anyio.Event = field(default_factory=anyio.Event)
    failure: Exception | None = None
    timer: asyncio.TimerHandle | None = None  # the idle check, while nothing is in flight
    asked: int = 0  # server-to-client requests minted so far
    on_detached: Callable[[], None] = lambda: None  # a POST stream was closed while its call runs
    close_get_stream: Callable[[], None] = lambda: None

    def asked_here(self, request_id: object) -> bool:
        return (
            isinstance(request_id, int)
            and not isinstance(request_id, bool)
            and self.id_base < request_id < self.id_base + (1 << BLOCK_BITS)
        )

    def expect_answer(self) -> int:
        """A new server-to-client request id, whose answer `answered` will resolve."""
        self.asked = self.asked % ((1 << BLOCK_BITS) - 1) + 1
        request_id = self.id_base + self.asked
        self.pending[request_id] = asyncio.get_running_loop().create_future()
        return request_id

    def answered(self, request_id: object, outcome: dict[str, Any] | ErrorData) -> bool:
        """The client's answer to a request of this session; False when nothing waits for it here."""
        future = self.pending.get(request_id) if isinstance(request_id, int) else None
        if future is None or future.done():
            return False
        future.set_result(outcome)
        return True


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
        on_detached: Callable[[], None] = lambda: None,
        close_get_stream: Callable[[str], None] = lambda _: None,
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
        self._on_detached = on_detached
        self._close_get_stream = close_get_stream
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

    def answered(self, request_id: object, outcome: dict[str, Any] | ErrorData) -> bool:
        """The client's answer to a server-to-client request minted here: to the live session waiting for it."""
        if not self.asked_here(request_id):
            return False
        for live in self._live.values():
            if live.asked_here(request_id):
                return live.answered(request_id, outcome)
        return False

    # Using a live session

    async def acquire(self, session_id: str, load: Callable[[], Awaitable[SessionRecord | None]]) -> LiveSession:
        """The session's live session, built from `load()`'s record if it is not live here, held (in flight)
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
        """A new session's live session (its initialize is about to be served), held until `release`."""
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
                self._end(live)
            elif live.timer is None:
                self._check_idle_later(live, self.idle_seconds)

    def retire(self, session_id: str) -> None:
        """The session ended: no new request enters its live session, which ends once nothing is in flight."""
        live = self._live.pop(session_id, None)
        if live is not None:
            live.retired = True
            self._on_count(len(self._live))
            if live.in_flight == 0:
                self._end(live)

    def _check_idle_later(self, live: LiveSession, delay: float) -> None:
        live.timer = asyncio.get_running_loop().call_later(delay, self._check_idle, live)

    def _check_idle(self, live: LiveSession) -> None:
        """The idle timer (a loop callback, no task): release the live session if nothing came since."""
        live.timer = None
        if live.in_flight or live.retired:
            return  # in use (its last release re-arms the timer), or already ending
        left = live.idle_since + self.idle_seconds - time.monotonic()
        if left > 0:
            self._check_idle_later(live, left)
            return
        self._discard(live)  # in the same step as the check: no request can slip in between
        self._end(live)

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
        self._blocks = (self._blocks + 1) % (1 << (PREFIX_SHIFT - BLOCK_BITS))
        id_base = (self._prefix << PREFIX_SHIFT) + (self._blocks << BLOCK_BITS)
        live = LiveSession(session_id, id_base, store)
        live.on_detached = self._on_detached
        live.close_get_stream = lambda: self._close_get_stream(session_id)
        store.close_stream = lambda key: _close_exchange(live, key)
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
            connection = Connection.for_loop(
                SessionOutbound(live),
                session_id=live.session_id,
                protocol_version_hint=record.protocol_version if record else None,
            )
            if record is not None:
                restore(connection, record)
            live.connection = connection
            live.runner = ServerRunner(self.server, connection, self._lifespan_state)
            await self.events.watch(live.session_id)
        except BaseException as error:
            live.failure = error if isinstance(error, Exception) else SessionGone(live.session_id)
            self._discard(live)
            raise
        finally:
            live.ready.set()

    def _end(self, live: LiveSession) -> None:
        """The live session ends (nothing in flight): what waits on it is told, its connection closed."""
        if live.ended:
            return
        live.ended = True
        if live.timer is not None:
            live.timer.cancel()
            live.timer = None
        self._discard(live)
        live.store.ended()
        fail_pending(live)
        self.released_since_collect += 1
        if live.failure is None and self._task_group is not None:
            self._task_group.start_soon(self._close, live)
        else:
            _unlink(live)

    async def _close(self, live: LiveSession) -> None:
        with anyio.CancelScope(shield=True):
            if live.connection is not None:
                await aclose_shielded(live.connection)
            await self.events.unwatch(live.session_id)
        _unlink(live)


def _unlink(live: LiveSession) -> None:
    """Break the ended live session's reference cycles, so that it is freed at once, not at a collection."""
    live.store.close_stream = _no_stream
    live.close_get_stream = _nothing
    if live.connection is not None and isinstance(live.connection.outbound, SessionOutbound):
        live.connection.outbound.ended()
    live.exchanges.clear()


def _no_stream(_key: str) -> None:
    return None


def _nothing() -> None:
    return None


def _close_exchange(live: LiveSession, key: str) -> None:
    exchange = live.exchanges.get(key)
    if exchange is not None:
        exchange.close()


def restore(connection: Connection, record: SessionRecord) -> None:
    """Make a fresh connection what the session's initialize made it, without a new handshake."""
    assert record.protocol_version is not None
    if record.client_params:
        connection.client_params = InitializeRequestParams.model_validate(json.loads(record.client_params))
    connection.protocol_version = record.protocol_version
    connection.initialized.set()
