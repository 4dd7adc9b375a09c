"""Every use of the MCP SDK's private surface, in one place (mcp is pinned to 2.3.x).

The SDK has no public hook for what a multi-replica runtime needs: the low-level server inside an
`MCPServer`, its subscription bus, the modern-era request entry, a transport's read stream and per-request
streams, and the dispatcher's id counter. Each function below names the private attribute it touches, and
`tests/runtime/test_sdk_contract.py` pins each one, so an SDK upgrade that moves one fails there with its name
instead of somewhere deep in a request.
"""

from __future__ import annotations

from typing import Any

from mcp.server._streamable_http_modern import handle_modern_request as _modern_entry
from mcp.server.lowlevel.server import Server
from mcp.server.mcpserver import MCPServer
from mcp.server.streamable_http import StreamableHTTPServerTransport
from mcp.server.subscriptions import SubscriptionBus
from mcp.shared.jsonrpc_dispatcher import JSONRPCDispatcher
from mcp.shared.message import SessionMessage
from mcp_types import JSONRPCMessage


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


# `mcp.server._streamable_http_modern.handle_modern_request(app, security_settings, json_response,
# lifespan_state, scope, receive, send)`: serve one modern-era request. Bound here once, not wrapped, so the hot
# path pays no extra frame or import per request.
handle_modern_request = _modern_entry


def start_ids_at(dispatcher: JSONRPCDispatcher[Any], base: int) -> None:
    """`JSONRPCDispatcher._next_id`: server-to-client request ids start after `base`."""
    dispatcher._next_id = base


async def deliver(transport: StreamableHTTPServerTransport, message: JSONRPCMessage) -> bool:
    """`transport._read_stream_writer`: hand a client message to the session's dispatcher, as a POST would.

    False when the transport is not connected (nothing is waiting for the message).
    """
    writer = transport._read_stream_writer
    if writer is None or transport.is_terminated:
        return False
    await writer.send(SessionMessage(message))
    return True
