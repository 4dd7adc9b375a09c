"""The runtime's Redis client, from the settings: a URL's one server, or the primary the Sentinels name.

With Sentinels the client is redis-py's own (`Sentinel.master_for`): every new connection asks the Sentinels
for the primary, a connection still on a primary that was demoted fails its command with READONLY and is
dropped, and the pool's idle connections are closed when the primary's address changes; `failover.py` adds a
role check on every new connection and follows the Sentinels' `+switch-master` announcements. What is ours is only
the wiring: the URL's credentials, database and TLS for both the data nodes and the Sentinels, and the
timeouts and retry every connection gets.
"""

from __future__ import annotations

from typing import Any

import redis.asyncio as aioredis
from redis.asyncio.connection import SSLConnection, parse_url
from redis.asyncio.retry import Retry
from redis.asyncio.sentinel import Sentinel
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError

from mcp_runtime.redis_store.failover import connection_class
from mcp_runtime.settings import RuntimeSettings, sentinel_address

# What the URL gives when the Sentinels give the address: the rest of parse_url's answer.
_ADDRESS = ("host", "port", "path", "connection_class")


def file_password(settings: RuntimeSettings) -> str | None:
    """MCP_REDIS_PASSWORD_FILE's password (a password in MCP_REDIS_URL wins over it)."""
    return settings.redis_password_file.read_text().strip() if settings.redis_password_file else None


def common_options(settings: RuntimeSettings) -> dict[str, Any]:
    """Every connection: decoded replies, the timeout on connect and on each reply, one retry.

    A command that fails on a broken connection (a pooled connection Redis dropped when it restarted, or one to
    a primary that is now a replica) is retried once, at once, on a fresh connection; a timeout is not
    retried, so no call waits much longer than MCP_REDIS_TIMEOUT_SECONDS. (redis-py's default would retry ten
    times with backoff.)
    """
    timeout = settings.redis_timeout_seconds
    return {
        "decode_responses": True,
        "socket_timeout": timeout,
        "socket_connect_timeout": timeout,
        "health_check_interval": 15,
        "retry": Retry(NoBackoff(), 1, supported_errors=(RedisConnectionError,)),
    }


def sentinel_options(settings: RuntimeSettings) -> tuple[dict[str, Any], dict[str, Any]]:
    """(options of the Sentinel connections, options of the data connections) when Sentinels are set."""
    parsed: dict[str, Any] = dict(parse_url(settings.redis_url)) if settings.redis_url else {}
    data = {k: v for k, v in parsed.items() if k not in _ADDRESS}
    if not data.get("password") and (password := file_password(settings)):
        data["password"] = password
    if parsed.get("connection_class") is SSLConnection:
        data["ssl"] = True
    timeout = settings.redis_timeout_seconds
    # Sentinels take the same credentials and TLS, but no database: they answer SENTINEL commands only.
    sentinel = {k: v for k, v in data.items() if k != "db"}
    # Each Sentinel is asked once: the next one is the retry (redis-py's default would back off for seconds).
    sentinel.update(
        socket_timeout=timeout, socket_connect_timeout=timeout, decode_responses=True, retry=Retry(NoBackoff(), 0)
    )
    return sentinel, data


def redis_client(settings: RuntimeSettings) -> aioredis.Redis:
    """A client of MCP_REDIS_URL's server, or of the primary that MCP_REDIS_SENTINELS name."""
    if settings.redis_sentinels:
        assert settings.redis_sentinel_master is not None
        sentinel_kwargs, data = sentinel_options(settings)
        addresses = [sentinel_address(a) for a in settings.redis_sentinels]
        sentinel = Sentinel(addresses, sentinel_kwargs=sentinel_kwargs)  # type: ignore[no-untyped-call]
        client: aioredis.Redis = sentinel.master_for(
            settings.redis_sentinel_master,
            redis_class=aioredis.Redis,
            connection_class=connection_class(bool(data.get("ssl"))),
            **data,
            **common_options(settings),
        )
        return client
    assert settings.redis_url is not None
    client = aioredis.Redis.from_url(settings.redis_url, password=file_password(settings), **common_options(settings))
    return client


async def close(client: aioredis.Redis) -> None:
    """Close the client, and the Sentinel connections behind it when it has some."""
    await client.aclose()
    sentinel = getattr(client.connection_pool, "sentinel_manager", None)
    if isinstance(sentinel, Sentinel):
        await sentinel.aclose()
