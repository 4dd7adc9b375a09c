"""Following a Sentinel failover without ever writing to a node that is no longer the primary.

redis-py's Sentinel client asks the Sentinels for the primary on every new connection, and drops a connection
whose command is refused with READONLY (a demoted primary). Two gaps are closed here:

- a new connection checks the node's `ROLE` before it is used: a node the Sentinels still name but that is a
  replica now (their view lags during a failover) is refused, and the next attempt asks the Sentinels again;
- the Sentinels' `+switch-master` announcement closes every pooled connection to the old primary at once
  (idle ones now, busy ones as soon as their command is done), instead of waiting for a READONLY that an
  isolated old primary, still believing it is the primary, would never send.
"""

from __future__ import annotations

import logging
from typing import Any

import anyio
import redis.asyncio as aioredis
from anyio.abc import TaskStatus
from redis.asyncio.connection import SSLConnection
from redis.asyncio.sentinel import Sentinel, SentinelConnectionPool, SentinelManagedConnection
from redis.exceptions import ConnectionError as RedisConnectionError

from mcp_runtime.redis_store.pubsub import PubSub, keep_subscribed

logger = logging.getLogger(__name__)

SWITCH_CHANNEL = "+switch-master"


class PrimaryConnection(SentinelManagedConnection):
    """A connection to the primary the Sentinels name, refused at connect time if the node is not one."""

    async def connect_to(self, address: Any) -> None:
        await super().connect_to(address)  # type: ignore[no-untyped-call]
        if not self.connection_pool.is_master:
            return
        await self.send_command("ROLE", check_health=False)
        reply = await self.read_response()
        role = reply[0] if isinstance(reply, list | tuple) and reply else reply
        if isinstance(role, bytes):
            role = role.decode()
        if role != "master":
            await self.disconnect()
            raise RedisConnectionError(
                f"{address[0]}:{address[1]} is a {role}, not the primary; asking the Sentinels again"
            )


class PrimarySSLConnection(PrimaryConnection, SSLConnection):
    pass


def connection_class(ssl: bool) -> type[SentinelManagedConnection]:
    return PrimarySSLConnection if ssl else PrimaryConnection


async def drop_primary_connections(pool: SentinelConnectionPool) -> None:
    """Forget the primary's address; close idle connections now, and busy ones when they are released."""
    pool.master_address = None
    await pool.disconnect(inuse_connections=False)
    await pool.update_active_connections_for_reconnect()  # type: ignore[no-untyped-call]


async def follow_switches(
    client: aioredis.Redis, master: str, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED
) -> None:
    """Listen for `+switch-master` of `master` on every Sentinel; on one, drop the connections to the old primary."""
    pool = client.connection_pool
    assert isinstance(pool, SentinelConnectionPool)
    sentinel = pool.sentinel_manager
    assert isinstance(sentinel, Sentinel)

    async def listen(pubsub: PubSub) -> None:
        while True:
            message = await pubsub.get_message(timeout=1.0)
            if message is None or message.get("type") != "message":
                continue
            data = message["data"]
            fields = (data.decode() if isinstance(data, bytes) else str(data)).split()
            if fields and fields[0] == master:
                logger.warning("the Sentinels switched the primary: %s; reconnecting", " ".join(fields[1:]))
                await drop_primary_connections(pool)

    async with anyio.create_task_group() as tg:
        for node in sentinel.sentinels:
            tg.start_soon(_listen_on, node, listen)
        task_status.started()


async def _listen_on(node: aioredis.Redis, listen: Any) -> None:
    address = node.connection_pool.connection_kwargs.get("host", "?")
    await keep_subscribed(node, lambda: [SWITCH_CHANNEL], listen, what=f"sentinel {address} switches")
