"""Session events across replicas: Redis pub/sub (one channel a session), and the messages of each session's
SSE streams kept in a bounded Redis stream so that a client can resume any stream with Last-Event-ID on any
replica; and each replica's heartbeat, so a stream resumed elsewhere learns when its call's runner is gone.

Implements `mcp_runtime.sessions.events.SessionEvents`.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import anyio
import redis.asyncio as aioredis

from mcp_runtime.backends.base import BackendUnavailable
from mcp_runtime.redis_store.errors import call, connection_lost
from mcp_runtime.redis_store.keys import RedisKeys
from mcp_runtime.redis_store.pubsub import keep_subscribed
from mcp_runtime.redis_store.scripts import GROWS, RECORD
from mcp_runtime.sessions.event_ids import GET_STREAM
from mcp_runtime.sessions.events import Event, Handler, Kept

logger = logging.getLogger(__name__)

HEARTBEAT_SECONDS = 1.0
ALIVE_TTL_SECONDS = 5.0


class RedisEvents:
    """Events over Redis pub/sub, SSE messages kept in a bounded Redis stream per session."""

    def __init__(
        self,
        client: aioredis.Redis,
        *,
        key_prefix: str,
        log_length: int,
        log_ttl: float,
        retention: float,
        timeout: float,
        replica: str | None = None,
    ) -> None:
        self.redis = client
        self.timeout = timeout
        self.keys = RedisKeys(key_prefix)
        self.log_length = log_length
        self.log_ttl_ms = int(log_ttl * 1000)
        self.retention_ms = int(retention * 1000)
        self._record = client.register_script(GROWS + RECORD)
        self._watched: Counter[str] = Counter()
        self._runner_channel = self.keys.runner_channel(replica) if replica is not None else None
        if self._runner_channel is not None:
            self._watched[self._runner_channel] = 1  # for as long as the replica runs
        self._pubsub: Any = None
        self._epoch = 0
        self._changed = anyio.Event()

    def _set_pubsub(self, pubsub: Any) -> None:
        self._pubsub = pubsub
        if pubsub is not None:
            self._epoch += 1  # what was published while there was no connection is lost to this replica

    @property
    def epoch(self) -> int | None:
        return self._epoch if self._pubsub is not None else None

    async def run(self, handler: Handler, *, task_status: anyio.abc.TaskStatus[None]) -> None:
        await keep_subscribed(
            self.redis,
            lambda: list(self._watched),  # every channel watched, after an outage too
            lambda pubsub: self._listen(pubsub, handler),
            what="session events",
            task_status=task_status,
            on_connection=self._set_pubsub,
        )

    async def _listen(self, pubsub: Any, handler: Handler) -> None:
        prefixes = (self.keys.channel_prefix, self.keys.messages_channel_prefix)
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
            session_id = next((channel[len(p) :] for p in prefixes if channel.startswith(p)), channel)
            try:
                event = json.loads(message["data"])
                if channel == self._runner_channel:  # about a call this replica runs: the session is named
                    session_id = str(event.pop("i", ""))
                await handler(session_id, event)
            except Exception:
                logger.exception("session event handler failed")

    def _channels(self, session_id: str, messages: bool) -> list[str]:
        """A live session hears the session's answers and end; a replica holding one of its streams, its SSE
        messages too (so a call's replica does not hear its own messages back)."""
        channel = self.keys.channel(session_id)
        return [channel, self.keys.messages_channel(session_id)] if messages else [channel]

    async def watch(self, session_id: str, messages: bool = False) -> None:
        for channel in self._channels(session_id, messages):
            self._watched[channel] += 1
            if self._watched[channel] == 1 and self._pubsub is not None:
                await self._best_effort("subscribe to", self._pubsub.subscribe, channel)
                self._changed.set()

    async def unwatch(self, session_id: str, messages: bool = False) -> None:
        for channel in self._channels(session_id, messages):
            self._watched[channel] -= 1
            if self._watched[channel] > 0:
                continue
            del self._watched[channel]
            if self._pubsub is not None:
                await self._best_effort("unsubscribe from", self._pubsub.unsubscribe, channel)

    async def _best_effort(self, what: str, action: Callable[[str], Awaitable[Any]], channel: str) -> None:
        """(Un)subscribe a channel, within the store timeout; a failure is logged, never raised.

        It runs where nothing may fail: in a live session's cleanup, under a shield, and in a request. What it
        misses is made good by the resubscribe loop, which subscribes to exactly what is watched whenever it
        reconnects. A failure that is not Redis going away is logged with its traceback, to be looked at.
        """
        try:
            with anyio.fail_after(self.timeout):
                await action(channel)
        except Exception as error:
            lost = connection_lost(error) or isinstance(error, TimeoutError)
            logger.warning("could not %s %s: %r", what, channel[:80], error, exc_info=not lost)

    async def send(self, session_id: str, event: Event) -> None:
        await call(self.redis.publish(self.keys.channel(session_id), json.dumps(event)), self.timeout)

    async def ask_runner(self, replica: str, session_id: str, stream: str) -> None:
        event = json.dumps({"t": "keep", "i": session_id, "s": stream})
        await call(self.redis.publish(self.keys.runner_channel(replica), event), self.timeout)

    async def record(self, session_id: str, stream: str, message: str, final: bool) -> str:
        entry = await call(
            self._record(
                keys=[self.keys.events(session_id), self.keys.messages_channel(session_id)],
                args=[stream, message, "1" if final else "0", self.log_length, self.log_ttl_ms, self.retention_ms],
            ),
            self.timeout,
        )
        return str(entry)

    async def find(self, session_id: str, entry: str) -> Kept | None:
        found = await call(self.redis.xrange(self.keys.events(session_id), min=entry, max=entry, count=1), self.timeout)
        return _kept(found[0][0], found[0][1]) if found and found[0][1] else None

    async def replay(self, session_id: str, stream: str, after: str | None) -> list[Kept]:
        since = f"({after}" if after is not None else "-"
        entries = await call(self.redis.xrange(self.keys.events(session_id), min=since, max="+"), self.timeout)
        kept = [_kept(entry, fields) for entry, fields in entries or [] if fields]
        return [k for k in kept if k.stream == stream]

    async def runner_alive(self, replica: str) -> bool:
        return bool(await call(self.redis.exists(self.keys.alive(replica)), self.timeout))

    async def forget(self, session_id: str) -> None:
        """Nothing to do: the log is one of the session's keys, deleted with it (or expiring with it)."""

    async def heartbeat(
        self, replica: str, *, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED
    ) -> None:
        """Say this replica is running, until cancelled (then say it no more): a stream resumed on another
        replica while a call runs here ends with an error soon after this replica is gone."""
        key = self.keys.alive(replica)
        task_status.started()
        try:
            while True:
                try:
                    await call(self.redis.set(key, "1", px=int(ALIVE_TTL_SECONDS * 1000)), self.timeout)
                except BackendUnavailable as error:
                    logger.debug("heartbeat skipped: %s", error)
                await anyio.sleep(HEARTBEAT_SECONDS)
        finally:
            with anyio.CancelScope(shield=True), anyio.move_on_after(self.timeout):
                try:
                    await self.redis.delete(key)
                except Exception as error:  # exiting: a heartbeat left behind expires by itself
                    logger.debug("heartbeat not removed: %r", error)


def _kept(entry: Any, fields: Mapping[Any, Any]) -> Kept:
    """A log entry as kept by the RECORD script (an entry without `s`, from before POST streams were kept, is
    the GET stream's)."""
    return Kept(str(entry), str(fields.get("s", GET_STREAM)), str(fields.get("m", "")), fields.get("f") == "1")
