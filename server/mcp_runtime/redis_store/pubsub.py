"""Staying subscribed to Redis pub/sub across Redis restarts: one loop for every subscriber of the runtime.

redis-py retries a command once on a fresh connection (the client's `Retry`), and a PubSub resubscribes its
channels when its connection is re-established; what it cannot do is wait out an outage longer than its
retries. This loop does that, with redis-py's own exponential backoff between attempts, capped at a second:
what is published while a loop waits to resubscribe is lost to this replica, so it must not wait long once
Redis is back (a failover takes seconds, and the attempts in between cost one refused connection each).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

import anyio
import redis.asyncio as aioredis
from anyio.abc import TaskStatus
from redis.backoff import ExponentialBackoff
from redis.exceptions import RedisError

from mcp_runtime.redis_store.errors import connection_lost

logger = logging.getLogger(__name__)

PubSub = Any  # redis.asyncio.client.PubSub (its typing is loose)

RESUBSCRIBE_CAP_SECONDS = 1.0


async def keep_subscribed(
    client: aioredis.Redis,
    channels: Callable[[], Iterable[str]],
    listen: Callable[[PubSub], Awaitable[None]],
    *,
    what: str,
    task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED,
    on_connection: Callable[[PubSub | None], None] = lambda _: None,
) -> None:
    """Subscribe to `channels()` and run `listen(pubsub)`; when Redis is lost, do it again on a new connection.

    Started (for `task_status`) after the first attempt, successful or not: a replica starts while Redis is
    away and catches up when it is back. `on_connection` is told the current PubSub (None between attempts).
    """
    backoff = ExponentialBackoff(cap=RESUBSCRIBE_CAP_SECONDS, base=0.1)
    failures = 0
    started = False
    while True:
        try:
            async with client.pubsub(ignore_subscribe_messages=True) as pubsub:
                wanted = list(channels())
                if wanted:
                    await pubsub.subscribe(*wanted)
                on_connection(pubsub)
                failures = 0
                if not started:
                    started = True
                    task_status.started()
                await listen(pubsub)
        except (RedisError, OSError, RuntimeError) as error:
            if not connection_lost(error):
                raise
            failures += 1
            logger.warning("%s: lost redis (%s); resubscribing", what, error)
        finally:
            on_connection(None)
        if not started:
            started = True
            task_status.started()
        await anyio.sleep(backoff.compute(max(failures, 1)))
