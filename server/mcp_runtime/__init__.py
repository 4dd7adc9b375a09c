"""mcp-fleet's runtime: serves an MCP app over Streamable HTTP with a pluggable session backend."""

from mcp_runtime.state import AppState, HandleStore, SessionState, app_state, handle_store, session_state

__all__ = ["AppState", "HandleStore", "SessionState", "app_state", "handle_store", "session_state"]
