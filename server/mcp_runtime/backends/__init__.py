"""The session backend interface and the memory backend; the redis backend is in `mcp_runtime.redis_store`."""

from mcp_runtime.backends.base import (
    BackendRefused,
    BackendUnavailable,
    HandleError,
    SessionBackend,
    SessionLimitReached,
    SessionNotFound,
    SessionRecord,
)

__all__ = [
    "BackendRefused",
    "BackendUnavailable",
    "HandleError",
    "SessionBackend",
    "SessionLimitReached",
    "SessionNotFound",
    "SessionRecord",
]
