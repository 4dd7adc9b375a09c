"""The SDK transport's event store for one live session: every message it sends on an SSE stream is kept.

The SDK asks its `EventStore` for an id before each message goes out on a POST stream or the GET stream, and
for a priming event's id before a request is dispatched (clients at 2025-11-25 and later, SEP-1699). Here:

- a message is `record`ed in the session's event log (`events.py`: memory or Redis) under its stream's token,
  which also publishes it to whichever replica holds a resumed copy of that stream; a POST stream's answer is
  marked final, so a resumed stream knows where it ends. With `held` (Redis), an answer that goes out on its
  open stream is held in memory instead, and written only if its client resumes the stream
  (`held_answers.py`);
- a priming event is not kept: its id names the stream (`event_ids.py`), so resuming from it replays what the
  log holds of that stream;
- each request's run is tracked until its answer is recorded, so the session manager keeps the call (and its
  live session) running when its stream was cut, and a drain can close every resumable stream.

GET requests never reach the transport (the runtime serves them), so `replay_events_after` is not used.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import anyio
from mcp.server.streamable_http import GET_STREAM_KEY, EventCallback, EventId, EventStore, StreamId
from mcp_types import JSONRPCError, JSONRPCMessage, JSONRPCResponse

from mcp_runtime.backends import BackendUnavailable
from mcp_runtime.sessions.event_ids import GET_STREAM, PostStream, entry_event_id, priming_event_id
from mcp_runtime.sessions.events import SessionEvents
from mcp_runtime.sessions.held_answers import HeldAnswers

logger = logging.getLogger(__name__)

ANSWER_KEEP_SECONDS = 300.0  # how long an answer the store refused is retried (the default event retention)


@dataclass(eq=False)
class Run:
    """One request's POST stream while its call runs."""

    stream: PostStream
    token: str = ""  # the stream's token, made once
    answered: asyncio.Event = field(default_factory=asyncio.Event)  # (asyncio's: no backend lookup per request)
    primed: bool = False  # the client got a priming event: it can resume the stream, so it may be closed
    detached: bool = False  # its connection is gone (the client left, closed here when idle or draining)
    keep: bool = False  # a client resumed the stream: its answer is written to the log, never only held
    last_sent: float = field(default_factory=time.monotonic)
    timer: asyncio.TimerHandle | None = None


class SessionEventStore(EventStore):
    def __init__(
        self,
        session_id: str,
        events: SessionEvents,
        runner: str,
        *,
        post_streams: bool = True,
        idle_close_seconds: float | None = None,
        held: HeldAnswers | None = None,
    ) -> None:
        self.session_id = session_id
        self.held = held
        self.post_streams = post_streams  # False: POSTs are answered with JSON, only the GET stream's are kept
        self.events = events
        self.runner = runner
        self.idle_close_seconds = idle_close_seconds
        self.close_stream: Callable[[str], None] = lambda _key: None  # the transport's close_sse_stream
        self.runs: dict[str, Run] = {}
        self._keeping: set[asyncio.Task[None]] = set()

    def expect(self, key: str, request_id: int | str) -> Run:
        """A request is about to be dispatched: its run, named after the replica and its JSON-RPC id."""
        stream = PostStream.new(self.runner, request_id)
        run = Run(stream, stream.token)
        self.runs[key] = run
        return run

    def forget(self, key: str, run: Run) -> None:
        """The request was never dispatched (refused before its stream opened)."""
        if self.runs.get(key) is run:
            del self.runs[key]
        self._stop_timer(run)

    async def store_event(self, stream_id: StreamId, message: JSONRPCMessage | None) -> EventId:
        key = str(stream_id)
        run: Run | None = None
        if key == GET_STREAM_KEY:
            token = GET_STREAM
        elif not self.post_streams:
            return ""
        else:
            run = self.runs.get(key) or self.expect(key, key)  # (initialize is not announced: its id is its key)
            token = run.token
        if message is None:  # a priming event: nothing kept, the id names the stream
            if run is not None:
                run.primed = True
                self._arm(key, run)
            return priming_event_id(token, int(time.time() * 1000), self.session_id)
        final = run is not None and isinstance(message, JSONRPCResponse | JSONRPCError) and str(message.id) == key
        payload = message.model_dump_json(by_alias=True, exclude_unset=True)
        if final and run is not None and self._held(token, run, payload):
            self._answered(key, run)
            return ""  # no id: a client that resumes from the event before it gets the answer
        entry: str | None = None
        try:
            entry = await self.events.record(self.session_id, token, payload, final)
        except BackendUnavailable as error:
            # Sent on the open connection all the same; a client that resumes past it will not get it back,
            # except the answer, which is kept as soon as the store is back (a resumed stream waits for it).
            logger.warning("session %s: a message was sent but not kept yet: %s", self.session_id[:64], error)
            if final:
                self._keep_later(token, payload)
        if run is not None:
            run.last_sent = time.monotonic()
            if final:
                self._answered(key, run)
        return entry_event_id(entry, self.session_id) if entry else ""

    def _held(self, token: str, run: Run, payload: str) -> bool:
        """Hold the answer of a stream still carried by its connection, that no client has resumed. (Held as
        its JSON, a string: thousands of held message models would each be traversed by every full collection
        of the garbage collector, which costs more than the serialization.)"""
        if self.held is None or run.detached or run.keep:
            return False
        return self.held.hold(self.session_id, token, payload)

    def _answered(self, key: str, run: Run) -> None:
        self._stop_timer(run)
        run.answered.set()
        if self.runs.get(key) is run:
            del self.runs[key]

    def keep_answer(self, token: str) -> bool:
        """A client resumed the stream `token` while its call runs here: its answer will be written to the log.
        False when no call of that stream runs here."""
        for run in self.runs.values():
            if run.token == token:
                run.keep = True
                return True
        return False

    def detached(self, run: Run) -> None:
        """The connection of a run's stream is gone (the client left) while its call goes on."""
        run.detached = True
        self._stop_timer(run)

    async def replay_events_after(self, last_event_id: EventId, send_callback: EventCallback) -> StreamId | None:
        return None  # GET requests are served by the runtime, never by the transport

    def detach_all(self) -> int:
        """Close every resumable stream whose call still runs (the replica drains); how many."""
        detached = 0
        for key, run in list(self.runs.items()):
            if run.primed and not run.detached and not run.answered.is_set():
                self._detach(key, run)
                detached += 1
        return detached

    def ended(self) -> None:
        """The live session ended: no run will answer any more."""
        for run in self.runs.values():
            self._stop_timer(run)
            run.answered.set()
        self.runs.clear()

    def _keep_later(self, token: str, payload: str) -> None:
        task = asyncio.get_running_loop().create_task(self._keep_answer(token, payload))
        self._keeping.add(task)
        task.add_done_callback(self._keeping.discard)
        if self.held is not None:  # (so that a resumer's question is not answered "lost" meanwhile)
            self.held.writing.add((self.session_id, token))
            task.add_done_callback(lambda _: self.held.writing.discard((self.session_id, token)) if self.held else None)

    async def _keep_answer(self, token: str, payload: str) -> None:
        """Record an answer the store refused, once it takes writes again (within ANSWER_KEEP_SECONDS)."""
        deadline = time.monotonic() + ANSWER_KEEP_SECONDS
        while time.monotonic() < deadline:
            await anyio.sleep(1.0)
            try:
                await self.events.record(self.session_id, token, payload, True)
            except BackendUnavailable:
                continue
            logger.info("session %s: an answer was kept after the store came back", self.session_id[:64])
            return
        logger.error("session %s: an answer could not be kept; its stream cannot be resumed", self.session_id[:64])

    # Closing a stream that has been silent too long (before a proxy's idle timeout cuts it)

    def _arm(self, key: str, run: Run) -> None:
        if self.idle_close_seconds:
            run.timer = asyncio.get_running_loop().call_later(self.idle_close_seconds, self._check_idle, key, run)

    def _check_idle(self, key: str, run: Run) -> None:
        run.timer = None
        if run.answered.is_set() or run.detached or self.idle_close_seconds is None:
            return
        left = run.last_sent + self.idle_close_seconds - time.monotonic()
        if left > 0:
            run.timer = asyncio.get_running_loop().call_later(left, self._check_idle, key, run)
            return
        self._detach(key, run)

    def _detach(self, key: str, run: Run) -> None:
        run.detached = True
        self._stop_timer(run)
        self.close_stream(key)

    @staticmethod
    def _stop_timer(run: Run) -> None:
        if run.timer is not None:
            run.timer.cancel()
            run.timer = None
