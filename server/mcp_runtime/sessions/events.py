"""Events about one session that must reach whichever replica holds its live parts, and its event log.

- `message`: a server message of one of the session's SSE streams (the GET stream, or a POST stream whose
  client reconnected with Last-Event-ID, perhaps on another replica than the one running the call);
- `answer`: the client's answer to a server-to-client request (elicitation, sampling), POSTed to a replica
  other than the one whose tool is waiting for it;
- `ended`: the session was deleted; every replica drops what it holds of it;
- `keep`: a client resumed a POST stream; the replica running its call writes the answer to the log (sent to
  that replica alone, on Redis; see `held_answers.py`).

A replica `watch`es a session while it holds one of its streams or its live session. Every SSE message is
`record`ed: kept in the session's event log (bounded in length and age) and published to the watchers, so a
client resumes any stream with Last-Event-ID on any replica. `LocalEvents` (memory backend) keeps the log in
process; `mcp_runtime.redis_store.events.RedisEvents` keeps it in a Redis stream and publishes over pub/sub.
"""

from __future__ import annotations

import time
from collections import Counter, deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

import anyio

from mcp_runtime.web.sse import entry_order

Event = dict[str, Any]
Handler = Callable[[str, Event], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class Kept:
    """A message kept in a session's event log."""

    entry: str  # its place in the log (`{millis}-{seq}`)
    stream: str  # the token of the stream it was sent on (`event_ids`)
    message: str  # the JSON-RPC message
    final: bool  # the answer that ends its POST stream


def message_event(kept: Kept) -> Event:
    """The `message` event that carries a kept message to the replicas watching its session."""
    return {"t": "message", "s": kept.stream, "e": kept.entry, "m": kept.message, "f": 1 if kept.final else 0}


def kept_from_event(event: Event) -> Kept:
    return Kept(str(event.get("e") or ""), str(event.get("s") or ""), str(event.get("m")), bool(event.get("f")))


class SessionEvents(Protocol):
    @property
    def epoch(self) -> int | None:
        """While this replica hears session events, a number that changes whenever it may have missed some (a
        new pub/sub connection); None while it does not hear them."""
        ...

    async def run(self, handler: Handler, *, task_status: anyio.abc.TaskStatus[None]) -> None:
        """Deliver watched sessions' events to `handler` until cancelled."""
        ...

    async def watch(self, session_id: str, messages: bool = False) -> None:
        """Hear the session's events; with `messages`, its SSE messages too (this replica holds a stream)."""
        ...

    async def unwatch(self, session_id: str, messages: bool = False) -> None: ...

    async def send(self, session_id: str, event: Event) -> None: ...

    async def ask_runner(self, replica: str, session_id: str, stream: str) -> None:
        """Ask the replica running a resumed POST stream's call to write its answer to the log (a `keep`
        event about the session, heard by that replica only)."""
        ...

    async def record(self, session_id: str, stream: str, message: str, final: bool) -> str:
        """Keep a message of one of the session's streams and publish it to the watchers; its log entry."""
        ...

    async def find(self, session_id: str, entry: str) -> Kept | None:
        """A kept entry (its stream, whether it ended its stream); None when the log no longer holds it."""
        ...

    async def replay(self, session_id: str, stream: str, after: str | None) -> list[Kept]:
        """The kept messages of `stream` after entry `after` (all of them for None), oldest first."""
        ...

    async def runner_alive(self, replica: str) -> bool:
        """Whether a replica is still running (it may be running a call whose stream is resumed here)."""
        ...

    async def forget(self, session_id: str) -> None:
        """The session ended: its log may go."""
        ...


class LocalEvents:
    """One process: events go straight to the handler; each session's log is a bounded ring in memory."""

    def __init__(self, *, log_length: int = 1000, retention_seconds: float = 300.0) -> None:
        self.log_length = log_length
        self.retention_ms = int(retention_seconds * 1000)
        self._handler: Handler | None = None
        self._watched: Counter[str] = Counter()
        self._streams_held: Counter[str] = Counter()
        self._logs: dict[str, deque[Kept]] = {}
        self._last = (0, 0)

    @property
    def epoch(self) -> int | None:
        return 0  # (in process: nothing is ever missed)

    async def run(self, handler: Handler, *, task_status: anyio.abc.TaskStatus[None]) -> None:
        self._handler = handler
        task_status.started()
        await anyio.sleep_forever()

    async def watch(self, session_id: str, messages: bool = False) -> None:
        self._watched[session_id] += 1
        if messages:
            self._streams_held[session_id] += 1

    async def unwatch(self, session_id: str, messages: bool = False) -> None:
        for watched in (self._watched, self._streams_held) if messages else (self._watched,):
            watched[session_id] -= 1
            if watched[session_id] <= 0:
                del watched[session_id]

    async def send(self, session_id: str, event: Event) -> None:
        if self._handler is not None and session_id in self._watched:
            await self._handler(session_id, event)

    async def ask_runner(self, replica: str, session_id: str, stream: str) -> None:
        """Nothing to ask: one process runs every call, and the memory backend holds no answer back."""

    def _next_entry(self) -> str:
        millis = int(time.time() * 1000)
        last_millis, last_seq = self._last
        self._last = (millis, 0) if millis > last_millis else (last_millis, last_seq + 1)
        return f"{self._last[0]}-{self._last[1]}"

    async def record(self, session_id: str, stream: str, message: str, final: bool) -> str:
        kept = Kept(self._next_entry(), stream, message, final)
        log = self._logs.get(session_id)
        if log is None:
            log = self._logs[session_id] = deque(maxlen=self.log_length)
        log.append(kept)
        oldest = int(time.time() * 1000) - self.retention_ms
        while log and entry_order(log[0].entry)[0] < oldest:
            log.popleft()
        if self._handler is not None and session_id in self._streams_held:
            await self._handler(session_id, message_event(kept))
        return kept.entry

    async def find(self, session_id: str, entry: str) -> Kept | None:
        for kept in self._logs.get(session_id, ()):
            if kept.entry == entry:
                return kept
        return None

    async def replay(self, session_id: str, stream: str, after: str | None) -> list[Kept]:
        kept = [k for k in self._logs.get(session_id, ()) if k.stream == stream]
        if after is None:
            return kept
        since = entry_order(after)
        return [k for k in kept if entry_order(k.entry) > since]

    async def runner_alive(self, replica: str) -> bool:
        return True  # one process: the runner is this process

    async def forget(self, session_id: str) -> None:
        self._logs.pop(session_id, None)
