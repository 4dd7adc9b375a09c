"""The redis backend: session records, session state and handles shared by every replica.

Key names are spelled in `keys.py`. Caps, touches and deletes are Lua scripts (`scripts.py`), so each is atomic
across replicas; times are Redis's own clock. A session record is written whole, once initialize has succeeded, so
a session that was not fully established leaves nothing behind.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import redis.asyncio as aioredis
from redis.commands.core import AsyncScript
from redis.exceptions import NoScriptError, RedisError, ResponseError

from mcp_runtime.backends.base import (
    BackendUnavailable,
    HandleError,
    SessionLimitReached,
    SessionNotFound,
    SessionRecord,
)
from mcp_runtime.redis_store.client import close
from mcp_runtime.redis_store.errors import CLUSTER_REFUSAL, RedisClusterRefused, call
from mcp_runtime.redis_store.keys import RedisKeys
from mcp_runtime.redis_store.scripts import (
    ADMIT,
    COUNT,
    DELETE,
    GROWS,
    HANDLE_CREATE,
    HANDLE_DELETE,
    HANDLE_GET,
    HANDLE_INCREMENT,
    HANDLE_SET,
    KEEPS,
    STATE_DELETE,
    STATE_INCREMENT,
    STATE_SET,
    SWEEP,
    TOUCH,
)

logger = logging.getLogger(__name__)
T = TypeVar("T")


def _owner(owner: str | None) -> str:
    return owner or "-"


class RedisBackend:
    name = "redis"

    def __init__(
        self,
        client: aioredis.Redis,
        *,
        key_prefix: str,
        session_ttl: float,
        max_sessions: int,
        max_sessions_per_client: int,
        replica_name: str = "replica",
        timeout: float | None = None,
        wait_replicas: int = 0,
        wait_timeout: float = 0.1,
        refuse_unreplicated: bool = False,
        on_unreplicated: Callable[[], None] = lambda: None,
        on_expired: Callable[[int], None] = lambda _: None,
    ) -> None:
        self.redis = client
        self.timeout = timeout
        self.wait_replicas = wait_replicas
        self.wait_timeout_ms = max(1, int(wait_timeout * 1000))
        self.refuse_unreplicated = refuse_unreplicated
        self.on_unreplicated = on_unreplicated
        self.on_expired = on_expired
        self.keys = RedisKeys(key_prefix)
        self.ttl_ms = int(session_ttl * 1000)
        self.max_sessions = max_sessions
        self.max_sessions_per_client = max_sessions_per_client
        self.replica_name = replica_name
        r = client
        self._admit = r.register_script(GROWS + ADMIT)
        self._touch = r.register_script(KEEPS + TOUCH)
        self._delete = r.register_script(KEEPS + DELETE)
        self._sweep = r.register_script(KEEPS + SWEEP)
        self._count = r.register_script(KEEPS + COUNT)
        self._state_set = r.register_script(GROWS + STATE_SET)
        self._state_increment = r.register_script(GROWS + STATE_INCREMENT)
        self._handle_get = r.register_script(KEEPS + HANDLE_GET)
        self._handle_increment = r.register_script(GROWS + HANDLE_INCREMENT)
        self._handle_set = r.register_script(GROWS + HANDLE_SET)
        self._handle_delete = r.register_script(KEEPS + HANDLE_DELETE)
        self._handle_create = r.register_script(GROWS + HANDLE_CREATE)
        self._state_delete = r.register_script(KEEPS + STATE_DELETE)

    async def _call(self, awaitable: Awaitable[T]) -> T:
        return await call(awaitable, self.timeout)

    async def start(self) -> None:
        """Refuse a Redis Cluster node; otherwise go on even if Redis is away (the replica starts unready)."""
        try:
            info = await self._call(self.redis.info("cluster"))
        except (BackendUnavailable, RedisError):
            info = {}
        if info.get("cluster_enabled"):
            raise RedisClusterRefused(CLUSTER_REFUSAL)
        if not await self.ready():
            logger.warning("redis is not reachable yet (or refuses writes); /readyz fails until it is")

    async def close(self) -> None:
        await close(self.redis)

    async def _write(self, command: Callable[[Any], Any]) -> Any:
        """One write that changes what a client is told: `command(client)` on the Redis client, or, with
        MCP_REDIS_WAIT_REPLICAS, queued in a pipeline and followed on the same connection by WAIT for that many
        replicas.

        A write fewer replicas hold in time is counted, and with MCP_REDIS_UNREPLICATED=refuse answered as the
        store being unavailable (503): the client is never told of a write a failover could take back.
        """
        if not self.wait_replicas:
            return await self._call(command(self.redis))
        async with self.redis.pipeline(transaction=False) as pipe:
            command(pipe)
            pipe.execute_command("WAIT", self.wait_replicas, self.wait_timeout_ms)
            result, acknowledged = await self._call(pipe.execute())
        if int(acknowledged) < self.wait_replicas:
            self.on_unreplicated()
            if self.refuse_unreplicated:
                raise BackendUnavailable(
                    f"redis: the write reached {acknowledged} of {self.wait_replicas} replicas within "
                    f"{self.wait_timeout_ms} ms (MCP_REDIS_UNREPLICATED=refuse)"
                )
        return result

    async def _script(self, script: AsyncScript, keys: list[str], args: list[Any]) -> Any:
        """A Lua script that writes, through `_write`. In a pipeline it is sent as EVALSHA by hand (redis-py
        would first ask SCRIPT EXISTS, one more round trip per call); a primary that lacks it (NOSCRIPT: the
        script did not run) is given it and asked again."""
        if not self.wait_replicas:
            return await self._call(script(keys=keys, args=args))

        def evalsha(pipe: Any) -> Any:
            return pipe.execute_command("EVALSHA", script.sha, len(keys), *keys, *args)

        try:
            return await self._write(evalsha)
        except NoScriptError:
            await self._call(self.redis.script_load(script.script))
            return await self._write(evalsha)

    async def ready(self) -> bool:
        """Redis answers and takes writes (a full Redis, a read-only replica or a primary waiting for a replica
        to catch up fails this, not only PING)."""
        try:
            return bool(await self._call(self.redis.set(self.keys.ready(self.replica_name), "1", px=10_000)))
        except (BackendUnavailable, RedisError, OSError):
            return False

    # Sessions

    async def admit(self, record: SessionRecord) -> None:
        sid = record.session_id
        keys = [self.keys.sessions, self.keys.client(record.client_key), self.keys.record(sid)]
        args: list[str | int] = [
            self.ttl_ms,
            self.max_sessions,
            self.max_sessions_per_client,
            sid,
            record.client_key,
            _owner(record.owner),
            record.protocol_version or "",
            record.client_params or "",
        ]
        refused = await self._script(self._admit, keys, args)
        if refused == 1:
            raise SessionLimitReached("server", self.max_sessions)
        if refused == 2:
            raise SessionLimitReached("client", self.max_sessions_per_client)

    async def get(self, session_id: str) -> SessionRecord | None:
        fields: dict[str, str] = await self._call(self.redis.hgetall(self.keys.record(session_id)))  # type: ignore[arg-type]
        if not fields or not await self.touch(session_id):
            return None
        owner = fields.get("o", "-")
        created = float(fields.get("c", 0)) / 1000
        return SessionRecord(
            session_id,
            fields.get("ck", ""),
            None if owner == "-" else owner,
            created,
            created,
            protocol_version=fields.get("pv") or None,
            client_params=fields.get("cp") or None,
        )

    async def touch(self, session_id: str) -> bool:
        keys = [self.keys.record(session_id), self.keys.state(session_id), self.keys.sessions]
        args: list[str | int] = [self.ttl_ms, session_id, self.keys.client_prefix]
        return bool(await self._call(self._touch(keys=keys, args=args)))

    async def alive(self, session_ids: list[str]) -> list[bool]:
        if not session_ids:
            return []
        async with self.redis.pipeline(transaction=False) as pipe:
            for session_id in session_ids:
                pipe.exists(self.keys.record(session_id))
            found = await self._call(pipe.execute())
        return [bool(n) for n in found]

    async def delete(self, session_id: str) -> bool:
        keys = [self.keys.sessions, *self.keys.session_keys(session_id)]
        return bool(await self._script(self._delete, keys, [session_id, self.keys.client_prefix]))

    async def sweep(self) -> list[str]:
        expired: list[str] = await self._call(self._sweep(keys=[self.keys.sessions]))
        if expired:
            self.on_expired(len(expired))
        return list(expired)

    async def count(self) -> int:
        return int(await self._call(self._count(keys=[self.keys.sessions])))

    # Session state

    async def state_get(self, session_id: str, key: str) -> Any:
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.exists(self.keys.record(session_id))
            pipe.hget(self.keys.state(session_id), key)
            exists, value = await self._call(pipe.execute())
        if not exists:
            raise SessionNotFound(session_id)
        return None if value is None else json.loads(value)

    async def state_set(self, session_id: str, key: str, value: Any) -> None:
        keys = [self.keys.record(session_id), self.keys.state(session_id)]
        if not await self._script(self._state_set, keys, [key, json.dumps(value)]):
            raise SessionNotFound(session_id)

    async def state_increment(self, session_id: str, key: str, by: int) -> int:
        keys = [self.keys.record(session_id), self.keys.state(session_id)]
        found, value = await self._script(self._state_increment, keys, [key, by])
        if not found:
            raise SessionNotFound(session_id)
        return int(value)

    async def state_delete(self, session_id: str, key: str) -> None:
        keys = [self.keys.record(session_id), self.keys.state(session_id)]
        if not await self._script(self._state_delete, keys, [key]):
            raise SessionNotFound(session_id)

    # App state

    async def shared_get(self, key: str) -> Any:
        value = await self._call(self.redis.get(self.keys.app(key)))
        return None if value is None else json.loads(value)

    async def shared_set(self, key: str, value: Any) -> None:
        await self._write(lambda r: r.set(self.keys.app(key), json.dumps(value)))

    # Key-value state

    async def kv_get(self, key: str) -> Any:
        value = await self._call(self.redis.get(self.keys.kv(key)))
        return None if value is None else json.loads(value)

    async def kv_put(self, key: str, value: Any, ttl: float | None) -> None:
        px = max(1, int(ttl * 1000)) if ttl else None
        await self._write(lambda r: r.set(self.keys.kv(key), json.dumps(value), px=px))

    async def kv_delete(self, key: str) -> bool:
        return bool(await self._write(lambda r: r.delete(self.keys.kv(key))))

    # Handles

    async def handle_create(self, handle: str, owner: str | None, data: dict[str, Any], ttl: float) -> None:
        ttl_ms = int(ttl * 1000)
        args: list[Any] = [ttl_ms, "o", _owner(owner), "t", ttl_ms]
        for k, v in data.items():
            args += [f"d:{k}", json.dumps(v)]
        await self._script(self._handle_create, [self.keys.handle(handle)], args)

    async def handle_get(self, handle: str, owner: str | None) -> dict[str, Any]:
        flat = await self._call(self._handle_get(keys=[self.keys.handle(handle)], args=[_owner(owner)]))
        if not flat:
            raise HandleError(handle)
        pairs = dict(zip(flat[::2], flat[1::2], strict=True))
        return {k[2:]: json.loads(v) for k, v in pairs.items() if k.startswith("d:")}

    async def handle_set(self, handle: str, owner: str | None, data: dict[str, Any]) -> None:
        args: list[Any] = [_owner(owner)]
        for k, v in data.items():
            args += [k, json.dumps(v)]
        if not await self._script(self._handle_set, [self.keys.handle(handle)], args):
            raise HandleError(handle)

    async def handle_increment(self, handle: str, owner: str | None, key: str, by: int) -> int:
        try:
            result = await self._script(self._handle_increment, [self.keys.handle(handle)], [_owner(owner), key, by])
        except ResponseError as error:
            raise ValueError(f"{key} of handle {handle[:64]} is not an integer") from error
        if not result:
            raise HandleError(handle)
        return int(result[0])

    async def handle_delete(self, handle: str, owner: str | None) -> None:
        if not await self._script(self._handle_delete, [self.keys.handle(handle)], [_owner(owner)]):
            raise HandleError(handle)
