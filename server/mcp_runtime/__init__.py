"""mcp-fleet's runtime: serves an MCP app over Streamable HTTP with a pluggable session backend."""

from mcp_runtime.state import HandleStore, SessionState, handle_store, session_state

__all__ = ["HandleStore", "SessionState", "handle_store", "session_state"]
