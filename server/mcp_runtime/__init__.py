"""mcp-fleet's runtime: serves an MCP app over Streamable HTTP with a pluggable session backend.

The state API is loaded on first use, so that `mcp_runtime.settings` (the contract the operator renders
from) imports without the MCP SDK, which the operator's image leaves out.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mcp_runtime.state import AppState, HandleStore, SessionState, app_state, handle_store, session_state

__all__ = ["AppState", "HandleStore", "SessionState", "app_state", "handle_store", "session_state"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from mcp_runtime import state

        return getattr(state, name)
    raise AttributeError(f"module 'mcp_runtime' has no attribute {name!r}")
