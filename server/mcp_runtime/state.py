"""State for app code: per-session state (handshake era) and handles (modern era), held by the session backend.

    from mcp_runtime.state import handle_store, session_state

    @app.tool()
    async def session_increment(ctx: Context, by: int = 1) -> int:
        return await session_state(ctx).increment("counter", by)

    @app.tool()
    async def counter_create() -> str:
        return await handle_store().create({"count": 0})

Values are JSON data. With the redis backend every replica sees the same state.
"""

from __future__ import annotations

import secrets
from typing import Any

from mcp.server.mcpserver import Context
from mcp.server.mcpserver.exceptions import ToolError

from mcp_runtime.backends import BackendUnavailable, HandleError, SessionBackend, SessionNotFound
from mcp_runtime.web.guard import PRINCIPAL_KEY, Principal, current_principal

_SESSION_HEADER = "mcp-session-id"


class _Bound:
    backend: SessionBackend | None = None
    handle_ttl: float = 3600.0


def bind(backend: SessionBackend | None, handle_ttl: float) -> None:
    """Called by the runtime at start-up (and with None at shutdown)."""
    _Bound.backend = backend
    _Bound.handle_ttl = handle_ttl


def _backend() -> SessionBackend:
    if _Bound.backend is None:
        raise ToolError("session state is available only inside mcp-runtime")
    return _Bound.backend


class SessionState:
    """Key-value state of one handshake-era session; it ends with the session."""

    def __init__(self, backend: SessionBackend, session_id: str) -> None:
        self._backend = backend
        self.session_id = session_id

    async def get(self, key: str, default: Any = None) -> Any:
        value = await self._call(self._backend.state_get(self.session_id, key))
        return default if value is None else value

    async def set(self, key: str, value: Any) -> None:
        await self._call(self._backend.state_set(self.session_id, key, value))

    async def increment(self, key: str, by: int = 1) -> int:
        """Add `by` to an integer (0 when unset) atomically and return the new value."""
        result: int = await self._call(self._backend.state_increment(self.session_id, key, by))
        return result

    async def delete(self, key: str) -> None:
        await self._call(self._backend.state_delete(self.session_id, key))

    @staticmethod
    async def _call(awaitable: Any) -> Any:
        try:
            return await awaitable
        except SessionNotFound as error:
            raise ToolError(f"Session not found: {error}") from None
        except BackendUnavailable as error:
            raise ToolError(f"Session store unavailable; retry later ({error})") from None


def session_state(ctx: Context[Any, Any]) -> SessionState:
    """The state of the session the current request belongs to (handshake-era requests only)."""
    session_id = (ctx.headers or {}).get(_SESSION_HEADER)
    if not session_id:
        raise ToolError(
            "This tool keeps state in a protocol session, and this request has none "
            "(modern-era clients have no sessions; use a handle instead)"
        )
    return SessionState(_backend(), session_id)


class HandleStore:
    """Server-minted handles: opaque ids a tool returns and later receives back as an argument.

    A handle is bound to the principal that created it (another principal's request sees it as unknown) and
    expires after `MCP_HANDLE_TTL_SECONDS` without use.
    """

    def __init__(self, backend: SessionBackend, owner: str | None, ttl: float) -> None:
        self._backend = backend
        self._owner = owner
        self._ttl = ttl

    async def create(self, data: dict[str, Any], *, ttl: float | None = None) -> str:
        handle = "h_" + secrets.token_urlsafe(18)
        await self._backend.handle_create(handle, self._owner, data, ttl or self._ttl)
        return handle

    async def get(self, handle: str) -> dict[str, Any]:
        result: dict[str, Any] = await self._call(self._backend.handle_get(handle, self._owner))
        return result

    async def set(self, handle: str, data: dict[str, Any]) -> None:
        await self._call(self._backend.handle_set(handle, self._owner, data))

    async def increment(self, handle: str, key: str, by: int = 1) -> int:
        result: int = await self._call(self._backend.handle_increment(handle, self._owner, key, by))
        return result

    async def delete(self, handle: str) -> None:
        await self._call(self._backend.handle_delete(handle, self._owner))

    @staticmethod
    async def _call(awaitable: Any) -> Any:
        try:
            return await awaitable
        except HandleError as error:
            raise ToolError(str(error)) from None
        except BackendUnavailable as error:
            raise ToolError(f"Session store unavailable; retry later ({error})") from None


class AppState:
    """Key-value state of the app itself, shared by every session and every replica (JSON values)."""

    def __init__(self, backend: SessionBackend) -> None:
        self._backend = backend

    async def get(self, key: str, default: Any = None) -> Any:
        value = await self._backend.shared_get(key)
        return default if value is None else value

    async def set(self, key: str, value: Any) -> None:
        await self._backend.shared_set(key, value)


def app_state() -> AppState:
    """State shared by every session and replica of this server (the redis backend keeps it in Redis)."""
    return AppState(_backend())


def caller(ctx: Context[Any, Any]) -> Principal | None:
    """Who made the current request: with OAuth, `issuer`, `subject`, `scopes` and the token's `claims` (so a
    tool can act for its caller); with static tokens, an `owner` only; None without authentication (or outside
    mcp-runtime). Taken from the request itself, so it is the caller of this request, in both protocol eras."""
    request = ctx.request_context.request
    scope = getattr(request, "scope", None)
    found = scope.get(PRINCIPAL_KEY) if isinstance(scope, dict) else None
    if isinstance(found, Principal):
        return found if found.owner is not None else None
    principal = current_principal.get()
    return principal if principal is not None and principal.owner is not None else None


def handle_store() -> HandleStore:
    """The handle store, bound to the principal of the current request."""
    principal = current_principal.get()
    return HandleStore(_backend(), principal.owner if principal else None, _Bound.handle_ttl)
