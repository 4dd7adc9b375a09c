"""FastMCP's session state (`ctx.get_state` / `ctx.set_state`) kept by the runtime's session backend.

A FastMCP app keeps session state in its `session_state_store` (a py-key-value `AsyncKeyValue`), by default
a store in the process's memory: behind several replicas each replica would count on its own. An app that
sets no store gets this one. A key FastMCP prefixes with a handshake-era session id (`{session}:{key}`) is
kept in that session's state (with redis in Redis, so every replica sees it; it expires with the session and
is deleted with it); any other key (FastMCP's per-user sessions, modern-era requests) in the backend's
key-value store, with the TTL FastMCP asks for.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any, SupportsFloat

from mcp_runtime.backends import SessionBackend, SessionNotFound

FIELD_PREFIX = "fastmcp:"


class RuntimeStateStore:
    """An `AsyncKeyValue` (the protocol of py-key-value-aio) over the runtime's session backend."""

    def __init__(self, backend: SessionBackend) -> None:
        self.backend = backend

    @staticmethod
    def _split(key: str, collection: str | None) -> tuple[str | None, str]:
        """(session id or None, the field/key name under which the value is kept)."""
        session_id, sep, rest = key.partition(":")
        field = f"{FIELD_PREFIX}{collection or 'default'}:{rest if sep else key}"
        return (session_id if sep and session_id else None), field

    async def get(self, key: str, *, collection: str | None = None) -> dict[str, Any] | None:
        value, _ = await self.ttl(key, collection=collection)
        return value

    async def ttl(self, key: str, *, collection: str | None = None) -> tuple[dict[str, Any] | None, float | None]:
        session_id, field = self._split(key, collection)
        if session_id is not None:
            try:
                stored = await self.backend.state_get(session_id, field)
            except SessionNotFound:
                pass  # not a live session's key: the key-value store
            else:
                return _unwrap(stored)
        return _unwrap(await self.backend.kv_get(f"{field}|{key}"))

    async def put(
        self, key: str, value: Mapping[str, Any], *, collection: str | None = None, ttl: SupportsFloat | None = None
    ) -> None:
        session_id, field = self._split(key, collection)
        seconds = float(ttl) if ttl is not None else None
        wrapped = {"v": dict(value), "exp": time.time() + seconds if seconds else None}
        if session_id is not None:
            try:
                await self.backend.state_set(session_id, field, wrapped)
                return
            except SessionNotFound:
                pass
        await self.backend.kv_put(f"{field}|{key}", wrapped, seconds)

    async def delete(self, key: str, *, collection: str | None = None) -> bool:
        session_id, field = self._split(key, collection)
        if session_id is not None:
            try:
                existed = await self.backend.state_get(session_id, field) is not None
                await self.backend.state_delete(session_id, field)
                return existed
            except SessionNotFound:
                pass
        return await self.backend.kv_delete(f"{field}|{key}")

    async def get_many(self, keys: Sequence[str], *, collection: str | None = None) -> list[dict[str, Any] | None]:
        return [await self.get(key, collection=collection) for key in keys]

    async def ttl_many(
        self, keys: Sequence[str], *, collection: str | None = None
    ) -> list[tuple[dict[str, Any] | None, float | None]]:
        return [await self.ttl(key, collection=collection) for key in keys]

    async def put_many(
        self,
        keys: Sequence[str],
        values: Sequence[Mapping[str, Any]],
        *,
        collection: str | None = None,
        ttl: SupportsFloat | None = None,
    ) -> None:
        for key, value in zip(keys, values, strict=True):
            await self.put(key, value, collection=collection, ttl=ttl)

    async def delete_many(self, keys: Sequence[str], *, collection: str | None = None) -> int:
        return sum([await self.delete(key, collection=collection) for key in keys])


def _unwrap(stored: Any) -> tuple[dict[str, Any] | None, float | None]:
    if not isinstance(stored, dict) or not isinstance(stored.get("v"), dict):
        return None, None
    expires = stored.get("exp")
    if isinstance(expires, int | float):
        left = expires - time.time()
        if left <= 0:
            return None, None
        return stored["v"], left
    return stored["v"], None


def install(holder: Any, backend: SessionBackend) -> bool:
    """Give a FastMCP app that set no `session_state_store` one backed by `backend`; False if it has its own.

    FastMCP 4 keeps the store it was given at `_state_storage` (None: it would make a memory store on first
    use); `tests/runtime/test_fastmcp_contract.py` pins this.
    """
    if not hasattr(holder, "_state_storage") or holder._state_storage is not None:
        return False
    holder._state_storage = RuntimeStateStore(backend)
    return True
