"""Events about one session that must reach whichever replica holds its live parts.

- `message`: a server message for the session's GET stream (held by one replica, produced on another);
- `answer`: the client's answer to a server-to-client request (elicitation, sampling), POSTed to a replica
  other than the one whose tool is waiting for it;
- `ended`: the session was deleted; every replica drops what it holds of it.

A replica `watch`es a session while it holds its GET stream or its live transport. The memory backend
delivers in process; the redis backend over Redis pub/sub (one channel a session), and keeps the GET
stream's messages in a Redis stream so that a client can resume with Last-Event-ID on any replica.
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

import anyio
import redis.asyncio as aioredis
from redis.exceptions import RedisError

from mcp_runtime.backends.base import BackendUnavailable

logger = logging.getLogger(__name__)

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


class RedisEvents:
    """Events over Redis pub/sub, GET-stream messages kept in a bounded Redis stream per session."""

    def __init__(self, client: aioredis.Redis, *, key_prefix: str, log_length: int, log_ttl: float) -> None:
        self.redis = client
        self.prefix = key_prefix
        self.log_length = log_length
        self.log_ttl_ms = int(log_ttl * 1000)
        self._watched: Counter[str] = Counter()
        self._pubsub: Any = None
        self._changed = anyio.Event()

    def channel(self, session_id: str) -> str:
        return f"{self.prefix}ch:{session_id}"

    def _log_key(self, session_id: str) -> str:
        return f"{self.prefix}ev:{session_id}"

    async def run(self, handler: Handler, *, task_status: anyio.abc.TaskStatus[None]) -> None:
        started = False
        delay = 0.2
        while True:
            try:
                async with self.redis.pubsub(ignore_subscribe_messages=True) as pubsub:
                    self._pubsub = pubsub
                    # Resubscribe to everything watched (after a Redis outage, too).
                    channels = [self.channel(s) for s in self._watched]
                    if channels:
                        await pubsub.subscribe(*channels)
                    if not started:
                        started = True
                        task_status.started()
                    delay = 0.2
                    await self._listen(pubsub, handler)
            except (RedisError, OSError) as error:
                logger.warning("session events: lost redis (%s); resubscribing in %.1fs", error, delay)
            finally:
                self._pubsub = None
            if not started:
                started = True
                task_status.started()
            await anyio.sleep(delay)
            delay = min(delay * 2, 5.0)

    async def _listen(self, pubsub: Any, handler: Handler) -> None:
        prefix = f"{self.prefix}ch:"
        while True:
            if not pubsub.subscribed:
                # Nothing to listen to yet: get_message would return at once; wait for a watch instead.
                self._changed = anyio.Event()
                with anyio.move_on_after(1.0):
                    await self._changed.wait()
                await pubsub.ping()
                continue
            message = await pubsub.get_message(timeout=1.0)
            if message is None or message.get("type") != "message":
                continue
            channel = message["channel"]
            session_id = channel[len(prefix) :] if channel.startswith(prefix) else channel
            try:
                await handler(session_id, json.loads(message["data"]))
            except Exception:
                logger.exception("session event handler failed")

    async def watch(self, session_id: str) -> None:
        self._watched[session_id] += 1
        if self._watched[session_id] == 1 and self._pubsub is not None:
            try:
                await self._pubsub.subscribe(self.channel(session_id))
            except (RedisError, OSError) as error:
                logger.warning("could not subscribe to session %s: %s", session_id[:64], error)
            self._changed.set()

    async def unwatch(self, session_id: str) -> None:
        self._watched[session_id] -= 1
        if self._watched[session_id] > 0:
            return
        del self._watched[session_id]
        if self._pubsub is not None:
            with contextlib.suppress(RedisError, OSError):
                await self._pubsub.unsubscribe(self.channel(session_id))

    async def send(self, session_id: str, event: Event) -> None:
        try:
            await self.redis.publish(self.channel(session_id), json.dumps(event))
        except (RedisError, OSError) as error:
            raise BackendUnavailable(f"redis: {error}") from None

    async def append(self, session_id: str, message: str) -> str | None:
        key = self._log_key(session_id)
        try:
            async with self.redis.pipeline(transaction=False) as pipe:
                pipe.xadd(key, {"m": message}, maxlen=self.log_length, approximate=True)
                pipe.pexpire(key, self.log_ttl_ms)
                event_id, _ = await pipe.execute()
        except (RedisError, OSError) as error:
            raise BackendUnavailable(f"redis: {error}") from None
        return str(event_id)

    async def replay(self, session_id: str, after: str) -> list[tuple[str, str]]:
        try:
            entries = await self.redis.xrange(self._log_key(session_id), min=f"({after}", max="+")
        except (RedisError, OSError) as error:
            raise BackendUnavailable(f"redis: {error}") from None
        except Exception:
            return []  # a malformed Last-Event-ID: nothing to replay
        return [(str(entry_id), str(fields["m"])) for entry_id, fields in entries or [] if fields]
