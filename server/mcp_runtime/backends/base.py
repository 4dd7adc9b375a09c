"""The session backend interface: where session records, session state and handles live.

The session manager and the state API for tools talk only to this interface, so the memory backend (one
process) and the redis backend (shared by replicas) are interchangeable.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

LimitScope = Literal["server", "client"]


class SessionLimitReached(Exception):
    """Admitting a session would pass a cap."""

    def __init__(self, scope: LimitScope, limit: int) -> None:
        self.scope = scope
        self.limit = limit
        who = "this server" if scope == "server" else "this client"
        super().__init__(f"Too many open sessions: {who} already holds {limit}; retry later or close a session")


class HandleError(Exception):
    """A handle is unknown, expired, or belongs to another principal (indistinguishable on purpose)."""

    def __init__(self, handle: str) -> None:
        super().__init__(f"Unknown or expired handle: {handle[:64]}")


class BackendUnavailable(Exception):
    """The backend cannot be reached right now (e.g. Redis is down); the request may be retried."""


class SessionNotFound(Exception):
    """The session is unknown, expired or deleted."""

    def __init__(self, session_id: str) -> None:
        super().__init__(f"session {session_id[:64]} is unknown or expired")


class BackendRefused(Exception):
    """The backend refuses to start: what it was given is not a store it can serve (the message says why)."""


@dataclass(slots=True)
class SessionRecord:
    """What a replica needs to serve a handshake-era session it did not open."""

    session_id: str
    client_key: str
    owner: str | None
    created_at: float
    last_seen: float
    protocol_version: str | None = None
    client_params: str | None = None  # the initialize params, compact JSON
    state: dict[str, Any] = field(default_factory=dict)


class SessionBackend(Protocol):
    name: str

    async def start(self) -> None: ...

    async def close(self) -> None: ...

    async def ready(self) -> bool:
        """Whether the backend can serve requests now (for redis: it answers and takes writes)."""
        ...

    # Sessions
    async def admit(self, record: SessionRecord) -> None:
        """Store a new session, whole (what initialize negotiated included), or raise SessionLimitReached if a
        cap would be passed (atomically). Expired sessions hold no slot."""
        ...

    async def get(self, session_id: str) -> SessionRecord | None:
        """The live record (its idle clock restarted), or None if unknown or expired."""
        ...

    async def touch(self, session_id: str) -> bool:
        """Restart the session's idle clock; False if it is unknown or expired."""
        ...

    async def alive(self, session_ids: list[str]) -> list[bool]:
        """Whether each session still exists (without restarting its idle clock)."""
        ...

    async def delete(self, session_id: str) -> bool: ...

    async def sweep(self) -> list[str]:
        """Remove what has expired; return the expired session ids."""
        ...

    async def count(self) -> int: ...

    # Session state (handshake-era state for tools)
    async def state_get(self, session_id: str, key: str) -> Any: ...

    async def state_set(self, session_id: str, key: str, value: Any) -> None: ...

    async def state_increment(self, session_id: str, key: str, by: int) -> int: ...

    async def state_delete(self, session_id: str, key: str) -> None: ...

    # App state: shared by every session and every replica of the server
    async def shared_get(self, key: str) -> Any: ...

    async def shared_set(self, key: str, value: Any) -> None: ...

    # Key-value state with an optional TTL, not tied to a session (FastMCP's state outside handshake sessions)
    async def kv_get(self, key: str) -> Any: ...

    async def kv_put(self, key: str, value: Any, ttl: float | None) -> None: ...

    async def kv_delete(self, key: str) -> bool: ...

    # Handles (modern-era state for tools)
    async def handle_create(self, handle: str, owner: str | None, data: dict[str, Any], ttl: float) -> None: ...

    async def handle_get(self, handle: str, owner: str | None) -> dict[str, Any]: ...

    async def handle_set(self, handle: str, owner: str | None, data: dict[str, Any]) -> None: ...

    async def handle_increment(self, handle: str, owner: str | None, key: str, by: int) -> int: ...

    async def handle_delete(self, handle: str, owner: str | None) -> None: ...
