"""What a Redis failure means to the runtime: 503 with Retry-After (BackendUnavailable), or a bug of ours.

Every store call goes through `call()`, which bounds it in time and maps Redis's own failures.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import TypeVar

from redis.exceptions import (
    AuthenticationError,
    AuthorizationError,
    NoPermissionError,
    OutOfMemoryError,
    ReadOnlyError,
    RedisError,
    ResponseError,
)
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from mcp_runtime.backends.base import BackendRefused, BackendUnavailable

T = TypeVar("T")


class ReplicasBehind(BackendUnavailable):
    """The primary refuses writes until a replica has caught up (min-replicas-to-write): Redis is up, and the
    request may be retried in a moment."""


# uvloop refuses a write to a socket that Redis closed under it (a server killed while redis-py was setting a
# new connection up) with a RuntimeError that redis-py lets through unwrapped.
CLOSED_TRANSPORT = "unable to perform operation on"


def connection_lost(error: BaseException) -> bool:
    """Whether an exception from a Redis call is Redis's (any RedisError, a socket error, a socket closed under
    uvloop) rather than a fault of ours; `call()` then tells a refused command from an unavailable Redis."""
    if isinstance(error, RedisError | OSError):
        return True
    return isinstance(error, RuntimeError) and CLOSED_TRANSPORT in str(error)


# Redis refusals that say "not now" rather than "your command is wrong": the request may be retried.
_UNAVAILABLE_REPLIES = ("OOM", "READONLY", "LOADING", "MASTERDOWN", "NOREPLICAS", "BUSY", "TRYAGAIN", "MISCONF")
_AUTH_REPLIES = ("NOAUTH", "WRONGPASS", "NOPERM")


def as_unavailable(error: Exception) -> BackendUnavailable | None:
    """The BackendUnavailable that a Redis error means, or None for an error in the command itself."""
    if isinstance(error, (RedisConnectionError, RedisTimeoutError, OSError)):
        return BackendUnavailable(f"redis: {error}")
    if isinstance(error, (AuthenticationError, AuthorizationError)):
        return BackendUnavailable(f"redis refused the credentials: {error}")
    if isinstance(error, ReadOnlyError):  # redis-py strips the reply's code: put it back for the message
        return BackendUnavailable(f"redis: READONLY {error}")
    if isinstance(error, OutOfMemoryError):
        return BackendUnavailable(f"redis: OOM {error}")
    if isinstance(error, NoPermissionError):
        return BackendUnavailable(f"redis: NOPERM {error}")
    if isinstance(error, ResponseError):
        reply = server_reply(error)
        if reply.startswith("NOREPLICAS"):
            return ReplicasBehind(f"redis: {reply}")
        if reply.startswith(_UNAVAILABLE_REPLIES) or reply.startswith(_AUTH_REPLIES):
            return BackendUnavailable(f"redis: {reply}")
    return None


_PIPELINE_ERROR = " of pipeline caused error: "


def server_reply(error: ResponseError) -> str:
    """Redis's own error reply: redis-py prefixes one from a pipeline with the command that caused it."""
    reply = str(error)
    if _PIPELINE_ERROR in reply:
        reply = reply.split(_PIPELINE_ERROR, 1)[1].lstrip("('\"")
    return reply


async def call(awaitable: Awaitable[T], within: float | None = None) -> T:
    """Await a Redis call; a failure of Redis itself becomes BackendUnavailable (503 with Retry-After).

    `within` bounds the whole call, reconnecting and asking the Sentinels for a new primary included (each of
    those has its own socket timeout, and together they could add up past it).
    """
    try:
        # asyncio's own timeout (the runtime runs on asyncio): anyio's fail_after looks its backend up on every
        # call, which costs more than the rest of this wrapper on the hot path.
        async with asyncio.timeout(within):
            return await awaitable
    except TimeoutError:
        raise BackendUnavailable(f"redis did not answer within {within}s (MCP_REDIS_TIMEOUT_SECONDS)") from None
    except RedisError as error:
        mapped = as_unavailable(error)
        if mapped is not None:
            raise mapped from None
        raise
    except OSError as error:
        raise BackendUnavailable(f"redis: {error}") from None
    except RuntimeError as error:
        if connection_lost(error):
            raise BackendUnavailable(f"redis: the connection was lost ({error})") from None
        raise


class RedisClusterRefused(BackendRefused):
    """The configured Redis is a Redis Cluster node: the runtime's scripts need one keyspace."""


CLUSTER_REFUSAL = (
    "MCP_REDIS_URL names a Redis Cluster node; the redis backend needs a single keyspace (one server, or a primary "
    "with replicas behind Sentinels): its atomic scripts touch the shared session index and per-client sets "
    "together with a session's own keys, which Redis Cluster keeps in different slots"
)
