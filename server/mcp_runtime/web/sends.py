"""ASGI `send` wrappers and refusals the MCP endpoint puts around the SDK transport's answers."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from http import HTTPStatus
from typing import Any

from mcp_types import INVALID_REQUEST, ErrorData, JSONRPCError
from starlette.responses import Response
from starlette.types import Message, Receive, Scope, Send

from mcp_runtime.web.errors import error_response
from mcp_runtime.web.messages import Incoming


class HeldUntilStored:
    """A send that holds a new session's response head until the session is stored.

    The session record is written when the initialize result is about to go out (the first body bytes):
    if that fails (a cap, Redis down, Redis full), the client gets a 503 with a JSON-RPC error instead, and
    no byte of the success answer has been sent.
    """

    def __init__(
        self, scope: Scope, receive: Receive, send: Send, store: Callable[[], Coroutine[Any, Any, Response | None]]
    ) -> None:
        self.scope = scope
        self.receive = receive
        self.send = send
        self.store = store
        self.head: Message | None = None
        self.refused = False

    async def __call__(self, message: Message) -> None:
        if self.refused:
            return
        if message["type"] == "http.response.start":
            self.head = message
            return
        if self.head is not None:
            if message["type"] == "http.response.body" and not message.get("body") and message.get("more_body"):
                return  # nothing to decide on yet
            head, self.head = self.head, None
            if head["status"] < 300:
                refusal = await self.store()
                if refusal is not None:
                    self.refused = True
                    await refusal(self.scope, self.receive, self.send)
                    return
            await self.send(head)
        await self.send(message)


class JsonRpcRefusals:
    """A send that gives every 4xx/5xx answer a JSON-RPC error body (the SDK's modern path sends some bare)."""

    def __init__(self, send: Send) -> None:
        self.send = send
        self.refusal: Message | None = None
        self.body = b""

    async def __call__(self, message: Message) -> None:
        if self.refusal is None and (message["type"] != "http.response.start" or message["status"] < 400):
            await self.send(message)  # the common case, first
            return
        if message["type"] == "http.response.start" and message["status"] >= 400:
            headers = dict(message.get("headers", []))
            if not headers.get(b"content-type", b"").startswith(b"application/json"):
                self.refusal = message
                return
        if self.refusal is None:
            await self.send(message)
            return
        self.body += message.get("body", b"")
        if message.get("more_body"):
            return
        status = self.refusal["status"]
        text = HTTPStatus(status).phrase if status in HTTPStatus._value2member_map_ else "Error"
        detail = self.body.decode(errors="replace").strip()[:200]
        kept = {k.decode(): v.decode() for k, v in self.refusal.get("headers", []) if k in (b"allow", b"retry-after")}
        response = error_response(status, f"{text}: {detail}" if detail else text, headers=kept or None)
        await response({"type": "http"}, _no_receive, self.send)


async def _no_receive() -> Message:
    return {"type": "http.disconnect"}


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
