"""Session events across replicas: Redis pub/sub (one channel a session), and each session's GET-stream
messages kept in a bounded Redis stream so that a client can resume with Last-Event-ID on any replica.

Implements `mcp_runtime.sessions.events.SessionEvents`.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
import redis.asyncio as aioredis

from mcp_runtime.redis_store.errors import call, connection_lost
from mcp_runtime.redis_store.keys import RedisKeys
from mcp_runtime.redis_store.pubsub import keep_subscribed
from mcp_runtime.sessions.events import Event, Handler

logger = logging.getLogger(__name__)


class RedisEvents:
    """Events over Redis pub/sub, GET-stream messages kept in a bounded Redis stream per session."""

    def __init__(
        self, client: aioredis.Redis, *, key_prefix: str, log_length: int, log_ttl: float, timeout: float
    ) -> None:
        self.redis = client
        self.timeout = timeout
        self.keys = RedisKeys(key_prefix)
        self.log_length = log_length
        self.log_ttl_ms = int(log_ttl * 1000)
        self._watched: Counter[str] = Counter()
        self._pubsub: Any = None
        self._changed = anyio.Event()

    def _set_pubsub(self, pubsub: Any) -> None:
        self._pubsub = pubsub

    async def run(self, handler: Handler, *, task_status: anyio.abc.TaskStatus[None]) -> None:
        await keep_subscribed(
            self.redis,
            lambda: [self.keys.channel(s) for s in self._watched],  # everything watched, after an outage too
            lambda pubsub: self._listen(pubsub, handler),
            what="session events",
            task_status=task_status,
            on_connection=self._set_pubsub,
        )

    async def _listen(self, pubsub: Any, handler: Handler) -> None:
        prefix = self.keys.channel_prefix
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
            await self._best_effort("subscribe to", self._pubsub.subscribe, session_id)
            self._changed.set()

    async def unwatch(self, session_id: str) -> None:
        self._watched[session_id] -= 1
        if self._watched[session_id] > 0:
            return
        del self._watched[session_id]
        if self._pubsub is not None:
            await self._best_effort("unsubscribe from", self._pubsub.unsubscribe, session_id)

    async def _best_effort(self, what: str, action: Callable[[str], Awaitable[Any]], session_id: str) -> None:
        """(Un)subscribe a session's channel, within the store timeout; a failure is logged, never raised.

        It runs where nothing may fail: in a live session's cleanup, under a shield, and in a request. What it
        misses is made good by the resubscribe loop, which subscribes to exactly what is watched whenever it
        reconnects. A failure that is not Redis going away is logged with its traceback, to be looked at.
        """
        try:
            with anyio.fail_after(self.timeout):
                await action(self.keys.channel(session_id))
        except Exception as error:
            lost = connection_lost(error) or isinstance(error, TimeoutError)
            logger.warning("could not %s session %s: %r", what, session_id[:64], error, exc_info=not lost)

    async def send(self, session_id: str, event: Event) -> None:
        await call(self.redis.publish(self.keys.channel(session_id), json.dumps(event)), self.timeout)

    async def append(self, session_id: str, message: str) -> str | None:
        key = self.keys.events(session_id)
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.xadd(key, {"m": message}, maxlen=self.log_length, approximate=True)
            pipe.pexpire(key, self.log_ttl_ms)
            event_id, _ = await call(pipe.execute(), self.timeout)
        return str(event_id)

    async def replay(self, session_id: str, after: str) -> list[tuple[str, str]]:
        """`after` is a well-formed event id (the router refuses others with 400)."""
        entries = await call(self.redis.xrange(self.keys.events(session_id), min=f"({after}", max="+"), self.timeout)
        return [(str(entry_id), str(fields["m"])) for entry_id, fields in entries or [] if fields]
