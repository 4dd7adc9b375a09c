"""Events about one session that must reach whichever replica holds its live parts.

- `message`: a server message for the session's GET stream (held by one replica, produced on another);
- `answer`: the client's answer to a server-to-client request (elicitation, sampling), POSTed to a replica
  other than the one whose tool is waiting for it;
- `ended`: the session was deleted; every replica drops what it holds of it.

A replica `watch`es a session while it holds its GET stream or its live transport. `LocalEvents` (memory
backend) delivers in process; `mcp_runtime.redis_store.events.RedisEvents` over Redis pub/sub, and keeps the
GET stream's messages so that a client can resume with Last-Event-ID on any replica.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

import anyio

Event = dict[str, Any]
Handler = Callable[[str, Event], Awaitable[None]]


class SessionEvents(Protocol):
    async def run(self, handler: Handler, *, task_status: anyio.abc.TaskStatus[None]) -> None:
        """Deliver watched sessions' events to `handler` until cancelled."""
        ...

    async def watch(self, session_id: str) -> None: ...

    async def unwatch(self, session_id: str) -> None: ...

    async def send(self, session_id: str, event: Event) -> None: ...

    async def append(self, session_id: str, message: str) -> str | None:
        """Keep a GET-stream message for resumption; its event id (None: not kept)."""
        ...

    async def replay(self, session_id: str, after: str) -> list[tuple[str, str]]:
        """The kept messages after event id `after`, oldest first."""
        ...


class LocalEvents:
    """One process: events go straight to the handler; nothing is kept for resumption."""

    def __init__(self) -> None:
        self._handler: Handler | None = None
        self._watched: Counter[str] = Counter()

    async def run(self, handler: Handler, *, task_status: anyio.abc.TaskStatus[None]) -> None:
        self._handler = handler
        task_status.started()
        await anyio.sleep_forever()

    async def watch(self, session_id: str) -> None:
        self._watched[session_id] += 1

    async def unwatch(self, session_id: str) -> None:
        self._watched[session_id] -= 1
        if self._watched[session_id] <= 0:
            del self._watched[session_id]

    async def send(self, session_id: str, event: Event) -> None:
        if self._handler is not None and session_id in self._watched:
            await self._handler(session_id, event)

    async def append(self, session_id: str, message: str) -> str | None:
        return None

    async def replay(self, session_id: str, after: str) -> list[tuple[str, str]]:
        return []
