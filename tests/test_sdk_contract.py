"""The SDK internals the runtime relies on (mcp is pinned to 2.3.x): an upgrade that moves them fails here."""

from __future__ import annotations

import inspect

import mcp
from mcp.server._streamable_http_modern import handle_modern_request
from mcp.server.connection import Connection
from mcp.server.mcpserver import MCPServer
from mcp.server.runner import serve_connection
from mcp.server.streamable_http import StreamableHTTPServerTransport
from mcp.shared.jsonrpc_dispatcher import JSONRPCDispatcher
from mcp_types.version import HANDSHAKE_PROTOCOL_VERSIONS, MODERN_PROTOCOL_VERSIONS


def test_pinned_version() -> None:
    from importlib.metadata import version

    assert version("mcp").startswith("2.3."), mcp


def test_private_surface() -> None:
    assert hasattr(MCPServer("x"), "_lowlevel_server")
    assert list(inspect.signature(handle_modern_request).parameters) == [
        "app",
        "security_settings",
        "json_response",
        "lifespan_state",
        "scope",
        "receive",
        "send",
    ]
    assert {"mcp_session_id", "is_json_response_enabled", "security_settings", "idle_timeout"} <= set(
        inspect.signature(StreamableHTTPServerTransport).parameters
    )
    assert {"session_id", "protocol_version_hint"} <= set(inspect.signature(Connection.for_loop).parameters)
    assert {"connection", "lifespan_state"} <= set(inspect.signature(serve_connection).parameters)
    assert "inline_methods" in inspect.signature(JSONRPCDispatcher).parameters
    assert "2025-11-25" in HANDSHAKE_PROTOCOL_VERSIONS and "2026-07-28" in MODERN_PROTOCOL_VERSIONS
