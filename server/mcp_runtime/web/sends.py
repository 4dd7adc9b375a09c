"""ASGI `send` wrappers and refusals the MCP endpoint puts around its answers."""

from __future__ import annotations

from collections.abc import Callable

from mcp_types import INVALID_REQUEST, ErrorData, JSONRPCError
from starlette.responses import Response
from starlette.types import Message, Send

from mcp_runtime.web.messages import Incoming


def duplicate_request(incoming: Incoming) -> Response:
    message = f"Request id {incoming.request_key!r} is already in flight in this session"
    request_id = incoming.id
    body = JSONRPCError(jsonrpc="2.0", id=request_id, error=ErrorData(code=INVALID_REQUEST, message=message))
    return Response(
        body.model_dump_json(by_alias=True, exclude_unset=True), status_code=409, media_type="application/json"
    )


def before_last_chunk(send: Send, callback: Callable[[], None]) -> Send:
    """A send that calls `callback` just before the response's last body chunk goes out (once)."""
    called = False

    async def sending(message: Message) -> None:
        nonlocal called
        if not called and message["type"] == "http.response.body" and not message.get("more_body", False):
            called = True
            callback()
        await send(message)

    return sending


def closing_connection(send: Send) -> Send:
    """A send that asks the client to close the connection after this response (`Connection: close`).

    A draining replica answers so: a client's next request (a stream resumed with Last-Event-ID above all)
    then opens a new connection, which the load balancer sends to another replica, instead of reusing a
    kept-alive one to this replica, which is about to exit."""

    async def sending(message: Message) -> None:
        if message["type"] == "http.response.start":
            message = {**message, "headers": [*message.get("headers", []), (b"connection", b"close")]}
        await send(message)

    return sending
