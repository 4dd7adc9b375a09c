"""The SDK internals the runtime relies on (mcp is pinned to 2.3.x): one test per use in `sdk_surface.py`.

An upgrade that moves one of them fails here, and the test's name says which.
"""

from __future__ import annotations

import inspect

import mcp
from mcp.server.connection import Connection
from mcp.server.lowlevel.server import Server
from mcp.server.mcpserver import MCPServer
from mcp.server.runner import ServerRunner, aclose_shielded
from mcp.server.streamable_http import GET_STREAM_KEY
from mcp.server.subscriptions import InMemorySubscriptionBus
from mcp.shared.exceptions import MCPError
from mcp.shared.jsonrpc_dispatcher import (
    cancelled_request_id_from_params,
    handler_exception_to_error_data,
    progress_token_from_params,
)
from mcp.shared.message import ServerMessageMetadata
from mcp.shared.transport_context import TransportContext
from mcp_types import ErrorData
from mcp_types.version import HANDSHAKE_PROTOCOL_VERSIONS, MODERN_PROTOCOL_VERSIONS

from mcp_runtime.sdk import surface as sdk_surface


def test_pinned_version() -> None:
    from importlib.metadata import version

    assert version("mcp").startswith("2.3."), mcp


def test_public_surface_the_runtime_builds_on() -> None:
    """What `sessions/live.py` and `sessions/exchange.py` call to serve a handshake-era request directly."""
    assert {"session_id", "protocol_version_hint"} <= set(inspect.signature(Connection.for_loop).parameters)
    assert list(inspect.signature(ServerRunner).parameters)[:3] == ["server", "connection", "lifespan_state"]
    runner = ServerRunner(Server("x"), Connection.for_loop(object()), None)  # type: ignore[arg-type]
    assert callable(runner.on_request) and callable(runner.on_notify)
    assert list(inspect.signature(aclose_shielded).parameters) == ["connection"]
    assert {"request_context", "close_sse_stream", "close_standalone_sse_stream"} <= set(
        inspect.signature(ServerMessageMetadata).parameters
    )
    assert {"kind", "can_send_request"} <= set(inspect.signature(TransportContext).parameters)
    assert progress_token_from_params({"_meta": {"progressToken": 7}}) == 7
    assert cancelled_request_id_from_params({"requestId": "a"}) == "a"
    assert handler_exception_to_error_data(MCPError(code=-1, message="m")) == ErrorData(code=-1, message="m")
    assert GET_STREAM_KEY == "_GET_stream"
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


def test_modern_param_rejection_is_the_private_Mcp_Param_check() -> None:
    from mcp.server._streamable_http_modern import _mcp_param_rejection

    assert sdk_surface.modern_param_rejection is _mcp_param_rejection
    assert list(inspect.signature(_mcp_param_rejection).parameters) == [
        "app",
        "request",
        "req",
        "verdict",
        "lifespan_state",
    ]


def test_is_tracing_middleware_knows_the_middleware_every_Server_starts_with() -> None:
    server = Server("x")
    assert [m for m in server.middleware if sdk_surface.is_tracing_middleware(m)], server.middleware
    assert not sdk_surface.is_tracing_middleware(object())
