"""Session backends: memory (one process) and, later, redis (shared by replicas)."""

from mcp_runtime.backends.base import (
    BackendUnavailable,
    HandleError,
    SessionBackend,
    SessionLimitReached,
    SessionRecord,
)

__all__ = ["BackendUnavailable", "HandleError", "SessionBackend", "SessionLimitReached", "SessionRecord"]
