"""The memory backend: the SDK's in-process session model made safe (caps, idle expiry, per-client limits)."""

from __future__ import annotations

import copy
import time
from collections import Counter, OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from mcp_runtime.backends.base import HandleError, SessionLimitReached, SessionNotFound, SessionRecord

MAX_KV = 100_000


@dataclass(slots=True)
class _Handle:
    owner: str | None
    data: dict[str, Any]
    ttl: float
    expires_at: float


class MemoryBackend:
    """Session records, session state and handles in this process's memory.

    Everything is plain data (no live transport), so an idle session costs a few hundred bytes.
    All methods are coroutines to match the backend interface; none of them awaits, so each is atomic.
    """

    name = "memory"

    def __init__(
        self,
        *,
        session_ttl: float,
        max_sessions: int,
        max_sessions_per_client: int,
        on_expired: Callable[[int], None] = lambda _: None,
    ) -> None:
        self.session_ttl = session_ttl
        self.on_expired = on_expired
        self.max_sessions = max_sessions
        self.max_sessions_per_client = max_sessions_per_client
        self._sessions: OrderedDict[str, SessionRecord] = OrderedDict()
        self._expired: list[str] = []
        self._per_client: Counter[str] = Counter()
        self._handles: dict[str, _Handle] = {}
        self._shared: dict[str, Any] = {}
        self._kv: OrderedDict[str, tuple[Any, float | None]] = OrderedDict()

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        self._sessions.clear()
        self._per_client.clear()
        self._handles.clear()

    async def ready(self) -> bool:
        return True

    # Sessions: `_sessions` is kept in order of last use (a touch moves a record to the end), so the expired
    # ones are always at the front and purging them costs only what they are.

    def _purge(self, now: float) -> None:
        """Release the slots of expired sessions at once and count them; the sweeper ends what replicas hold."""
        while self._sessions:
            session_id, record = next(iter(self._sessions.items()))
            if now - record.last_seen <= self.session_ttl:
                break
            del self._sessions[session_id]
            self._release_client_slot(record.client_key)
            self._expired.append(session_id)
            self.on_expired(1)

    def _live(self, session_id: str, now: float) -> SessionRecord | None:
        record = self._sessions.get(session_id)
        if record is None:
            return None
        if now - record.last_seen > self.session_ttl:
            return None  # expired; the next purge removes it
        return record

    async def admit(self, record: SessionRecord) -> None:
        self._purge(time.monotonic())
        if len(self._sessions) >= self.max_sessions:
            raise SessionLimitReached("server", self.max_sessions)
        if self._per_client[record.client_key] >= self.max_sessions_per_client:
            raise SessionLimitReached("client", self.max_sessions_per_client)
        self._sessions[record.session_id] = record
        self._per_client[record.client_key] += 1

    async def get(self, session_id: str) -> SessionRecord | None:
        now = time.monotonic()
        record = self._live(session_id, now)
        if record is not None:
            record.last_seen = now
            self._sessions.move_to_end(session_id)
        return record

    async def touch(self, session_id: str) -> bool:
        return await self.get(session_id) is not None

    async def alive(self, session_ids: list[str]) -> list[bool]:
        now = time.monotonic()
        return [self._live(session_id, now) is not None for session_id in session_ids]

    async def delete(self, session_id: str) -> bool:
        record = self._sessions.pop(session_id, None)
        if record is None:
            return False
        self._release_client_slot(record.client_key)
        return True

    def _release_client_slot(self, client_key: str) -> None:
        self._per_client[client_key] -= 1
        if self._per_client[client_key] <= 0:
            del self._per_client[client_key]

    async def sweep(self) -> list[str]:
        now = time.monotonic()
        self._purge(now)
        expired, self._expired = self._expired, []
        for handle in [h for h, rec in self._handles.items() if rec.expires_at < now]:
            del self._handles[handle]
        for key in [k for k, (_, expires) in self._kv.items() if expires is not None and expires < now]:
            del self._kv[key]
        return expired

    async def count(self) -> int:
        self._purge(time.monotonic())
        return len(self._sessions)

    # Session state

    def _record(self, session_id: str) -> SessionRecord:
        record = self._live(session_id, time.monotonic())
        if record is None:
            raise SessionNotFound(session_id)
        return record

    async def state_get(self, session_id: str, key: str) -> Any:
        return copy.deepcopy(self._record(session_id).state.get(key))

    async def state_set(self, session_id: str, key: str, value: Any) -> None:
        self._record(session_id).state[key] = copy.deepcopy(value)

    async def state_increment(self, session_id: str, key: str, by: int) -> int:
        state = self._record(session_id).state
        value = int(state.get(key) or 0) + by
        state[key] = value
        return value

    async def state_delete(self, session_id: str, key: str) -> None:
        self._record(session_id).state.pop(key, None)

    # App state

    async def shared_get(self, key: str) -> Any:
        return copy.deepcopy(self._shared.get(key))

    async def shared_set(self, key: str, value: Any) -> None:
        self._shared[key] = copy.deepcopy(value)

    # Key-value state (bounded: past MAX_KV entries the oldest go first)

    async def kv_get(self, key: str) -> Any:
        entry = self._kv.get(key)
        if entry is None or (entry[1] is not None and entry[1] < time.monotonic()):
            return None
        return copy.deepcopy(entry[0])

    async def kv_put(self, key: str, value: Any, ttl: float | None) -> None:
        self._kv.pop(key, None)
        self._kv[key] = (copy.deepcopy(value), time.monotonic() + ttl if ttl else None)
        while len(self._kv) > MAX_KV:
            self._kv.popitem(last=False)

    async def kv_delete(self, key: str) -> bool:
        return self._kv.pop(key, None) is not None

    # Handles

    def _handle(self, handle: str, owner: str | None) -> _Handle:
        now = time.monotonic()
        record = self._handles.get(handle)
        if record is None or record.expires_at < now or record.owner != owner:
            raise HandleError(handle)
        record.expires_at = now + record.ttl
        return record

    async def handle_create(self, handle: str, owner: str | None, data: dict[str, Any], ttl: float) -> None:
        self._handles[handle] = _Handle(owner, copy.deepcopy(data), ttl, time.monotonic() + ttl)

    async def handle_get(self, handle: str, owner: str | None) -> dict[str, Any]:
        return copy.deepcopy(self._handle(handle, owner).data)

    async def handle_set(self, handle: str, owner: str | None, data: dict[str, Any]) -> None:
        self._handle(handle, owner).data = copy.deepcopy(data)

    async def handle_increment(self, handle: str, owner: str | None, key: str, by: int) -> int:
        data = self._handle(handle, owner).data
        value = int(data.get(key) or 0) + by
        data[key] = value
        return value

    async def handle_delete(self, handle: str, owner: str | None) -> None:
        self._handle(handle, owner)
        del self._handles[handle]
