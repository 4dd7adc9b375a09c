"""The SDK internals the runtime relies on (mcp is pinned to 2.3.x): one test per use in `sdk_surface.py`.

An upgrade that moves one of them fails here, and the test's name says which.
"""

from __future__ import annotations

import inspect
from typing import Any

import anyio
import mcp
from mcp.server.connection import Connection
from mcp.server.lowlevel.server import Server
from mcp.server.mcpserver import MCPServer
from mcp.server.runner import serve_connection
from mcp.server.streamable_http import StreamableHTTPServerTransport
from mcp.server.subscriptions import InMemorySubscriptionBus
from mcp.shared.jsonrpc_dispatcher import JSONRPCDispatcher
from mcp.shared.message import SessionMessage
from mcp_types import JSONRPCNotification
from mcp_types.version import HANDSHAKE_PROTOCOL_VERSIONS, MODERN_PROTOCOL_VERSIONS

from mcp_runtime.sdk import surface as sdk_surface
from mcp_runtime.sessions.live import NO_TRANSPORT_CHECKS


def test_pinned_version() -> None:
    from importlib.metadata import version

    assert version("mcp").startswith("2.3."), mcp


def test_public_surface_the_runtime_builds_on() -> None:
    assert {"mcp_session_id", "is_json_response_enabled", "security_settings"} <= set(
        inspect.signature(StreamableHTTPServerTransport).parameters
    )
    assert {"session_id", "protocol_version_hint"} <= set(inspect.signature(Connection.for_loop).parameters)
    assert {"connection", "lifespan_state"} <= set(inspect.signature(serve_connection).parameters)
    assert "inline_methods" in inspect.signature(JSONRPCDispatcher).parameters
    assert "2025-11-25" in HANDSHAKE_PROTOCOL_VERSIONS and "2026-07-28" in MODERN_PROTOCOL_VERSIONS


def test_lowlevel_server_is_MCPServer__lowlevel_server() -> None:
    assert isinstance(sdk_surface.lowlevel_server(MCPServer("x")), Server)


def test_subscription_bus_is_MCPServer__subscriptions_and_is_replaceable() -> None:
    app = MCPServer("x")
    bus = sdk_surface.subscription_bus(app)
    assert callable(bus.publish) and callable(bus.subscribe)
    replacement = InMemorySubscriptionBus()
    sdk_surface.replace_subscription_bus(app, replacement)
    assert sdk_surface.subscription_bus(app) is replacement


def test_handle_modern_request_is_the_private_modern_entry() -> None:
    from mcp.server._streamable_http_modern import handle_modern_request

    assert sdk_surface.handle_modern_request is handle_modern_request
    assert list(inspect.signature(handle_modern_request).parameters) == [
        "app",
        "security_settings",
        "json_response",
        "lifespan_state",
        "scope",
        "receive",
        "send",
    ]


def test_start_ids_at_sets_JSONRPCDispatcher__next_id() -> None:
    sender, receiver = anyio.create_memory_object_stream[Any](1)
    dispatcher: JSONRPCDispatcher[Any] = JSONRPCDispatcher(receiver, sender)
    sdk_surface.start_ids_at(dispatcher, 5000)
    assert dispatcher._allocate_id() == 5001  # the id of the next server-to-client request
    sender.close()
    receiver.close()


def _transport() -> StreamableHTTPServerTransport:
    return StreamableHTTPServerTransport(mcp_session_id="s1", security_settings=NO_TRANSPORT_CHECKS)


async def test_deliver_writes_to_the_transports__read_stream_writer() -> None:
    transport = _transport()
    note = JSONRPCNotification(jsonrpc="2.0", method="notifications/initialized")
    assert not await sdk_surface.deliver(transport, note)  # not connected: nothing to deliver to
    async with transport.connect() as (read, _write):
        async with anyio.create_task_group() as tg:
            tg.start_soon(sdk_surface.deliver, transport, note)
            with anyio.fail_after(2):
                received = await read.receive()
        assert isinstance(received, SessionMessage) and received.message == note
