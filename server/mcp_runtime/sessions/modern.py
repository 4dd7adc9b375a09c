"""A modern-era (2026-07-28) request: the SDK's checks, in order, then the app's handler in the request's own task.

The SDK's entry (`handle_modern_request`) runs every request that may stream in a task group of its own (the
handler, a disconnect watcher and a deferral timer), though most answers are one JSON message. Here the handler
runs in the request's task; the response becomes an SSE stream at its first notification, or when the handler
has been silent for `PING_SECONDS` (then a keep-alive comment goes out every `PING_SECONDS`, as the SDK's does);
a client that leaves a call that has run past `WATCH_SECONDS` cancels it, as with the SDK. What a client sees is
the SDK's: the same checks, errors and HTTP statuses, and JSON unless a notification comes before the answer.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine, Mapping
from typing import Any

import anyio
import pydantic_core
from mcp.server.connection import Connection
from mcp.server.lowlevel.server import Server
from mcp.server.runner import ServerRunner, aclose_shielded, modern_error_data
from mcp.shared.dispatcher import CallOptions
from mcp.shared.exceptions import NoBackChannelError
from mcp.shared.inbound import (
    ERROR_CODE_HTTP_STATUS,
    InboundLadderRejection,
    classify_inbound_request,
    find_duplicated_routing_header,
    unsupported_protocol_version_rejection,
)
from mcp.shared.jsonrpc_dispatcher import progress_token_from_params
from mcp.shared.message import ServerMessageMetadata
from mcp.shared.transport_context import TransportContext
from mcp_types import HEADER_MISMATCH, INVALID_REQUEST, PARSE_ERROR, ErrorData, JSONRPCNotification, JSONRPCRequest
from pydantic import ValidationError
from starlette.requests import Request
from starlette.types import Receive, Scope, Send

from mcp_runtime.sdk.surface import modern_param_rejection
from mcp_runtime.sessions.exchange import progress_params
from mcp_runtime.web.errors import error_response
from mcp_runtime.web.head import RequestHead, accepts

logger = logging.getLogger(__name__)

PING_SECONDS = 15.0  # the SDK's keep-alive interval, and how long an answer may be awaited before SSE commits
WATCH_SECONDS = 1.0  # a call running longer than this is cancelled when its client leaves
_SSE_HEADERS = [
    (b"content-type", b"text/event-stream"),
    (b"cache-control", b"no-cache, no-transform"),
    (b"connection", b"keep-alive"),
    (b"x-accel-buffering", b"no"),
]
_PING = b": ping\r\n\r\n"


def _json(status: int, body: dict[str, Any]) -> list[dict[str, Any]]:
    data = pydantic_core.to_json(body)
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode())]
    return [
        {"type": "http.response.start", "status": status, "headers": headers},
        {"type": "http.response.body", "body": data},
    ]


def _reply(request_id: Any, outcome: dict[str, Any] | ErrorData) -> dict[str, Any]:
    if isinstance(outcome, ErrorData):
        return {"jsonrpc": "2.0", "id": request_id, "error": outcome.model_dump(mode="json", exclude_none=True)}
    return {"jsonrpc": "2.0", "id": request_id, "result": outcome}


def _status(reply: dict[str, Any]) -> int:
    error = reply.get("error")
    return ERROR_CODE_HTTP_STATUS.get(error["code"], 200) if error is not None else 200


async def _write(send: Send, reply: dict[str, Any]) -> None:
    for message in _json(_status(reply), reply):
        await send(message)


async def _reject(send: Send, error: InboundLadderRejection | ErrorData, request_id: Any) -> None:
    data = ErrorData(code=error.code, message=error.message, data=error.data)
    reply = {"jsonrpc": "2.0", "id": request_id, "error": data.model_dump(mode="json", exclude_none=True)}
    await _write(send, reply)


_INVALID_BODY = ErrorData(code=INVALID_REQUEST, message="Body must be a single JSON-RPC request or notification object")


class ModernExchange:
    """The dispatch context of one modern-era request: no back-channel; notifications open its SSE stream."""

    can_send_request = False

    def __init__(self, request: Request, request_id: Any, params: Mapping[str, Any] | None, send: Send) -> None:
        self.transport = TransportContext(kind="streamable-http", can_send_request=False, headers=request.headers)
        self.request_id = request_id
        self.message_metadata = ServerMessageMetadata(request_context=request)
        self.progress_token = progress_token_from_params(params)
        self._send = send
        self._cancel_requested: anyio.Event | None = None
        self.sse = False
        self.done = False
        self.left = False  # the client went away
        self._lock: asyncio.Lock | None = None

    @property
    def cancel_requested(self) -> anyio.Event:
        if self._cancel_requested is None:
            self._cancel_requested = anyio.Event()
        return self._cancel_requested

    async def send_raw_request(
        self, method: str, params: Mapping[str, Any] | None, opts: CallOptions | None = None
    ) -> dict[str, Any]:
        raise NoBackChannelError(method)

    async def notify(self, method: str, params: Mapping[str, Any] | None, opts: CallOptions | None = None) -> None:
        if self.done:
            return
        note = JSONRPCNotification(jsonrpc="2.0", method=method, params=dict(params) if params is not None else None)
        data = pydantic_core.to_json(note.model_dump(mode="json", by_alias=True, exclude_none=True))
        await self._event(b"event: message\r\ndata: " + data + b"\r\n\r\n")

    async def progress(self, progress: float, total: float | None = None, message: str | None = None) -> None:
        if self.progress_token is not None:
            await self.notify("notifications/progress", progress_params(self.progress_token, progress, total, message))

    async def _event(self, chunk: bytes) -> None:
        if not self.sse:
            self.sse = True
            self._lock = asyncio.Lock()
            async with self._lock:
                await self._send({"type": "http.response.start", "status": 200, "headers": _SSE_HEADERS})
        assert self._lock is not None
        async with self._lock:
            if not self.done:
                await self._send({"type": "http.response.body", "body": chunk, "more_body": True})

    async def finish(self, reply: dict[str, Any]) -> None:
        if not self.sse:
            self.done = True
            await _write(self._send, reply)
            return
        assert self._lock is not None
        async with self._lock:
            self.done = True
            data = pydantic_core.to_json(reply)
            await self._send({"type": "http.response.body", "body": b"event: message\r\ndata: " + data + b"\r\n\r\n"})

    async def keep_alive(self) -> None:
        """After `PING_SECONDS` of silence: commit the stream and ping it until the answer comes."""
        while not self.done:
            await self._event(_PING)
            await asyncio.sleep(PING_SECONDS)


async def handle_modern(
    app: Server[Any],
    json_response: bool,
    lifespan_state: Any,
    head: RequestHead,
    body: bytes,
    scope: Scope,
    receive: Receive,
    send: Send,
) -> None:
    """Serve one modern-era request (the runtime's guard has checked Host, Origin and the caller already)."""
    if head.method != "POST":
        await error_response(405, "Method Not Allowed", headers={"Allow": "POST"})(scope, receive, send)
        return
    has_json, has_sse = accepts(head)
    if not has_json or (not json_response and not has_sse):
        await error_response(406, "Not Acceptable")(scope, receive, send)
        return
    try:
        decoded = pydantic_core.from_json(body)
    except ValueError:
        await _reject(send, ErrorData(code=PARSE_ERROR, message="Parse error"), None)
        return
    request = Request(scope, receive)
    if isinstance(decoded, dict) and "id" not in decoded:
        await _acknowledge(decoded, request, send)
        return
    try:
        req = JSONRPCRequest.model_validate(decoded)
    except ValidationError:
        await _reject(send, _INVALID_BODY, None)
        return
    streams = req.method == "subscriptions/listen"  # a listen response IS a notification stream, never JSON
    if streams and not has_sse:
        await error_response(406, "Not Acceptable")(scope, receive, send)
        return
    duplicated = find_duplicated_routing_header(request.headers.items())
    if duplicated is not None:
        rejection = InboundLadderRejection(code=HEADER_MISMATCH, message=f"{duplicated} header appears more than once")
        await _reject(send, rejection, req.id)
        return
    verdict = classify_inbound_request(decoded, headers=dict(request.headers))
    if isinstance(verdict, InboundLadderRejection):
        await _reject(send, verdict, req.id)
        return
    param_rejection = await modern_param_rejection(app, request, req, verdict, lifespan_state)
    if param_rejection is not None:
        await _reject(send, param_rejection, req.id)
        return
    connection = Connection.from_envelope(verdict.protocol_version, verdict.client_info, verdict.client_capabilities)
    exchange = ModernExchange(request, req.id, req.params, send)
    if json_response and not streams:
        exchange.done = True  # (JSON only: notifications have no stream to go on)
    await _serve(app, exchange, req, connection, lifespan_state, receive)


async def _serve(
    app: Server[Any],
    exchange: ModernExchange,
    req: JSONRPCRequest,
    connection: Connection,
    lifespan_state: Any,
    receive: Receive,
) -> None:
    loop = asyncio.get_running_loop()
    task = asyncio.current_task()
    assert task is not None
    helpers: list[asyncio.Task[None]] = []

    def start(helper: Callable[[], Coroutine[Any, Any, None]]) -> None:
        helpers.append(loop.create_task(helper()))

    async def watch_disconnect() -> None:
        while (await receive()).get("type") != "http.disconnect":
            pass
        exchange.left = True
        task.cancel()

    json_only = exchange.done
    timers = [loop.call_later(WATCH_SECONDS, start, watch_disconnect)]
    if not json_only:
        timers.append(loop.call_later(PING_SECONDS, start, exchange.keep_alive))
    try:
        try:
            outcome: dict[str, Any] | ErrorData = await serve_request(
                app, exchange, req.method, req.params, connection, lifespan_state
            )
        except asyncio.CancelledError:
            if not exchange.left:
                raise
            task.uncancel()
            return  # the client left: nobody to answer
        except Exception as error:
            outcome = modern_error_data(error)
        await exchange.finish(_reply(req.id, outcome))
    finally:
        exchange.done = True
        for timer in timers:
            timer.cancel()
        for helper in helpers:
            helper.cancel()


async def serve_request(
    app: Server[Any],
    exchange: ModernExchange,
    method: str,
    params: Mapping[str, Any] | None,
    connection: Connection,
    lifespan_state: Any,
) -> dict[str, Any]:
    """The SDK's `serve_one`, without its shielded, time-bounded unwind of the connection's exit stack when
    nothing was pushed onto it (a fresh connection per request: nearly always)."""
    try:
        return await ServerRunner(app, connection, lifespan_state).on_request(exchange, method, params)
    finally:
        if getattr(connection.exit_stack, "_exit_callbacks", True):  # (CPython's AsyncExitStack keeps them there)
            await aclose_shielded(connection)


async def _acknowledge(decoded: dict[str, Any], request: Request, send: Send) -> None:
    """An id-less body: 202 for a notification at a served version (accepted and dropped, as the SDK does)."""
    try:
        JSONRPCNotification.model_validate(decoded)
    except ValidationError:
        await _reject(send, _INVALID_BODY, None)
        return
    requested = request.headers.get("mcp-protocol-version", "")
    unsupported = unsupported_protocol_version_rejection(requested)
    if unsupported is not None:
        await _reject(send, unsupported, None)
        return
    await send({"type": "http.response.start", "status": 202, "headers": []})
    await send({"type": "http.response.body", "body": b""})
