"""Every use of the MCP SDK's private surface, in one place (mcp is pinned to 2.3.x).

The SDK has no public hook for what a multi-replica runtime needs: the low-level server inside an
`MCPServer`, its subscription bus, the modern-era check of `Mcp-Param-*` headers, and the type of the tracing
middleware every `Server` starts with. Each function below names the private attribute it touches, and
`tests/runtime/test_sdk_contract.py` pins each one, so an SDK upgrade that moves one fails there with its name
instead of somewhere deep in a request.
"""

from __future__ import annotations

from typing import Any

from mcp.server._otel import OpenTelemetryMiddleware as _OpenTelemetryMiddleware
from mcp.server._streamable_http_modern import _mcp_param_rejection
from mcp.server.lowlevel.server import Server
from mcp.server.mcpserver import MCPServer
from mcp.server.subscriptions import SubscriptionBus


def lowlevel_server(app: MCPServer) -> Server[Any]:
    """`MCPServer._lowlevel_server`: the low-level server the runtime serves."""
    server: Server[Any] = app._lowlevel_server
    return server


def subscription_bus(app: MCPServer) -> SubscriptionBus:
    """`MCPServer._subscriptions`: the bus `subscriptions/listen` streams are fed from."""
    bus: SubscriptionBus = app._subscriptions
    return bus


def replace_subscription_bus(app: MCPServer, bus: SubscriptionBus) -> None:
    """Set `MCPServer._subscriptions` (read by every tool context the app makes afterwards)."""
    app._subscriptions = bus


# `mcp.server._streamable_http_modern._mcp_param_rejection(app, request, req, verdict, lifespan_state)`: a modern
# `tools/call`'s `Mcp-Param-*` headers checked against the tool's input schema (the SDK's own lookup of the schema,
# through `get_tool_input_schema` or the app's `tools/list`); None when they hold. Bound here once, not wrapped.
modern_param_rejection = _mcp_param_rejection


def is_tracing_middleware(middleware: object) -> bool:
    """`mcp.server._otel.OpenTelemetryMiddleware`: the span around every request a `Server` has by default."""
    return isinstance(middleware, _OpenTelemetryMiddleware)
