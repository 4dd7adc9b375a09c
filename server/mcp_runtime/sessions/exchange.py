"""One handshake-era request served without a transport: the app's handler called directly, its answer sent as
JSON when the answer is the first message, as an SSE stream when something comes first.

The SDK serves a handshake-era POST through a live transport: a task group, memory streams, a dispatcher task and
an SSE response for every request. Here the request's own task calls the server's handler kernel
(`ServerRunner.on_request`) with a `PostExchange` as its dispatch context, and the form of the response is
decided by its first outgoing message:

- the answer: `application/json` (a client accepts both);
- a notification, a server-to-client request (elicitation, sampling), `close_sse_stream()`, or a call silent for
  longer than `json_window` seconds: `text/event-stream`, opened with a priming event (at 2025-11-25 and later,
  SEP-1699) whose id lets the client resume the stream on any replica; every event after it is recorded in the
  session's event log by the session's `SessionEventStore` (`event_store.py`), exactly as the SDK transport had
  it record them, and the answer ends the stream.

`SessionOutbound` is the session's own channel (what a tool sends outside any request): the GET stream, through
the same event log, wherever the GET stream is held.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import anyio
import pydantic_core
from mcp.server.streamable_http import GET_STREAM_KEY
from mcp.shared.dispatcher import CallOptions
from mcp.shared.exceptions import MCPError, NoBackChannelError
from mcp.shared.jsonrpc_dispatcher import handler_exception_to_error_data, progress_token_from_params
from mcp.shared.message import ServerMessageMetadata
from mcp.shared.transport_context import TransportContext
from mcp_types import (
    CONNECTION_CLOSED,
    REQUEST_TIMEOUT,
    ErrorData,
    JSONRPCError,
    JSONRPCMessage,
    JSONRPCNotification,
    JSONRPCRequest,
    JSONRPCResponse,
)
from starlette.types import Receive, Send

from mcp_runtime.web.sse import priming_event, sse_event

if TYPE_CHECKING:
    from mcp_runtime.sessions.event_store import Run, SessionEventStore
    from mcp_runtime.sessions.live import LiveSession

logger = logging.getLogger(__name__)

RESUMABLE_FROM = "2025-11-25"  # the first protocol version whose clients take a priming event (SEP-1699)
CAN_ASK = TransportContext(kind="jsonrpc", can_send_request=True)
CANNOT_ASK = TransportContext(kind="jsonrpc", can_send_request=False)


def json_headers(session_id: str) -> list[tuple[bytes, bytes]]:
    return [(b"content-type", b"application/json"), (b"mcp-session-id", session_id.encode())]


def sse_headers(session_id: str) -> list[tuple[bytes, bytes]]:
    return [
        (b"content-type", b"text/event-stream"),
        (b"cache-control", b"no-cache, no-transform"),
        (b"connection", b"keep-alive"),
        (b"mcp-session-id", session_id.encode()),
    ]


def progress_params(token: int | str, progress: float, total: float | None, message: str | None) -> dict[str, Any]:
    """A `notifications/progress` notification's params, as the SDK's dispatch contexts make them."""
    params: dict[str, Any] = {"progressToken": token, "progress": progress}
    if total is not None:
        params["total"] = total
    if message is not None:
        params["message"] = message
    return params


def answer_json(request_id: int | str, result: dict[str, Any] | ErrorData) -> bytes:
    if isinstance(result, ErrorData):
        error = result.model_dump(by_alias=True, mode="json", exclude_none=True)
        return pydantic_core.to_json({"jsonrpc": "2.0", "id": request_id, "error": error})
    return pydantic_core.to_json({"jsonrpc": "2.0", "id": request_id, "result": result})


def error_data(error: BaseException, method: str) -> ErrorData:
    """A handler's exception as the SDK's dispatcher puts it on the wire (code 0 for anything unmapped)."""
    mapped = handler_exception_to_error_data(error)
    if mapped is not None:
        return mapped
    logger.error("handler for %r raised", method, exc_info=error)
    return ErrorData(code=0, message=str(error))


async def await_answer(live: LiveSession, request_id: int, opts: CallOptions | None) -> dict[str, Any]:
    """Wait for the client's answer to the server-to-client request `request_id` (POSTed to any replica)."""
    future = live.pending[request_id]
    timeout = (opts or {}).get("timeout")
    try:
        if timeout is not None:
            try:
                async with asyncio.timeout(timeout):
                    outcome = await future
            except TimeoutError:
                raise MCPError(code=REQUEST_TIMEOUT, message=f"Timed out after {timeout}s") from None
        else:
            outcome = await future
    finally:
        live.pending.pop(request_id, None)
    if isinstance(outcome, ErrorData):
        raise MCPError.from_error_data(outcome)
    return outcome


class SessionOutbound:
    """The session's standalone channel (an `Outbound`): messages outside any request go to its GET stream."""

    def __init__(self, live: LiveSession) -> None:
        self.live: LiveSession | None = live

    def ended(self) -> None:
        """The live session ended here: what is sent from now on goes nowhere (the next request builds anew)."""
        self.live = None

    async def notify(self, method: str, params: Mapping[str, Any] | None, opts: CallOptions | None = None) -> None:
        if self.live is None:
            logger.debug("dropped %s: the live session ended", method)
            return
        message = JSONRPCNotification(jsonrpc="2.0", method=method, params=dict(params) if params else None)
        await self.live.store.store_event(GET_STREAM_KEY, message)

    async def send_raw_request(
        self, method: str, params: Mapping[str, Any] | None, opts: CallOptions | None = None
    ) -> dict[str, Any]:
        live = self.live
        if live is None:
            raise MCPError(code=CONNECTION_CLOSED, message="Connection closed")
        request_id = live.expect_answer()
        message = JSONRPCRequest(jsonrpc="2.0", id=request_id, method=method, params=dict(params) if params else None)
        await live.store.store_event(GET_STREAM_KEY, message)
        return await await_answer(live, request_id, opts)


def answer_outcome(message: JSONRPCMessage) -> dict[str, Any] | ErrorData:
    """A client's answer (a result or an error) as a waiting request takes it."""
    if isinstance(message, JSONRPCError):
        return message.error
    assert isinstance(message, JSONRPCResponse)
    return message.result


class NoticeContext:
    """The dispatch context of a client notification: what its handler sends goes on the session's channel."""

    request_id = None
    progress_token = None

    def __init__(self, live: LiveSession, request: Any) -> None:
        self.outbound = SessionOutbound(live)
        self.transport = CAN_ASK
        self.can_send_request = True
        self.message_metadata = ServerMessageMetadata(request_context=request)
        self.cancel_requested = anyio.Event()

    async def notify(self, method: str, params: Mapping[str, Any] | None, opts: CallOptions | None = None) -> None:
        await self.outbound.notify(method, params, opts)

    async def send_raw_request(
        self, method: str, params: Mapping[str, Any] | None, opts: CallOptions | None = None
    ) -> dict[str, Any]:
        return await self.outbound.send_raw_request(method, params, opts)

    async def progress(self, progress: float, total: float | None = None, message: str | None = None) -> None:
        return None


class PostExchange:
    """One POST request's dispatch context and response (see the module's docstring)."""

    def __init__(
        self,
        live: LiveSession,
        request_id: int | str,
        method: str,
        params: Mapping[str, Any] | None,
        request: Any,
        send: Send,
        *,
        receive: Receive | None = None,
        run: Run | None,
        resumable: bool,
        retry_ms: int | None,
        json_window: float | None,
    ) -> None:
        self.live = live
        self.store: SessionEventStore = live.store
        self.key = str(request_id)
        self.request_id = request_id
        self.method = method
        self.params = params
        self.run = run  # None: answers are JSON only (the json_response setting)
        self.resumable = resumable and run is not None  # the client takes a priming event (2025-11-25 and later)
        self.retry_ms = retry_ms
        self.send = send
        self.receive = receive
        self._watcher: asyncio.Task[None] | None = None
        self.progress_token = progress_token_from_params(params)
        self.transport = CAN_ASK if run is not None else CANNOT_ASK
        self.message_metadata = ServerMessageMetadata(
            request_context=request,
            close_sse_stream=self.close_sse_stream if self.resumable else None,
            close_standalone_sse_stream=self.close_standalone_sse_stream if self.resumable else None,
        )
        self.sse = False  # the response is an SSE stream (decided at the first outgoing message)
        self.open = True  # the response can still be written to
        self.done = False  # the answer went out (or the request was cancelled)
        self.cancelled = False
        self._cancel_requested: anyio.Event | None = None
        self._lock: asyncio.Lock | None = None
        self._task: asyncio.Task[Any] | None = None
        self._window: asyncio.TimerHandle | None = None
        self._open_first = json_window == 0 and self.resumable
        if json_window and self.resumable:
            self._window = asyncio.get_running_loop().call_later(json_window, self._window_elapsed)

    # DispatchContext

    @property
    def can_send_request(self) -> bool:
        return self.run is not None and not self.done

    @property
    def cancel_requested(self) -> anyio.Event:
        if self._cancel_requested is None:
            self._cancel_requested = anyio.Event()
        return self._cancel_requested

    async def notify(self, method: str, params: Mapping[str, Any] | None, opts: CallOptions | None = None) -> None:
        if self.done or self.run is None:
            return  # (JSON answers: a notification has no stream to go on, as with the SDK's JSON responses)
        await self._emit(JSONRPCNotification(jsonrpc="2.0", method=method, params=dict(params) if params else None))

    async def progress(self, progress: float, total: float | None = None, message: str | None = None) -> None:
        if self.progress_token is not None:
            await self.notify("notifications/progress", progress_params(self.progress_token, progress, total, message))

    async def send_raw_request(
        self, method: str, params: Mapping[str, Any] | None, opts: CallOptions | None = None
    ) -> dict[str, Any]:
        if not self.can_send_request:
            raise NoBackChannelError(method)
        request_id = self.live.expect_answer()
        message = JSONRPCRequest(jsonrpc="2.0", id=request_id, method=method, params=dict(params) if params else None)
        await self._emit(message)
        return await await_answer(self.live, request_id, opts)

    # Serving

    async def serve(self) -> None:
        """Run the handler and answer; the response is complete (or cut) when this returns."""
        self._task = asyncio.current_task()
        self.live.exchanges[self.key] = self
        try:
            if self._open_first:
                await self._open_sse()
            try:
                outcome: dict[str, Any] | ErrorData = await self.live.runner.on_request(self, self.method, self.params)
            except asyncio.CancelledError:
                if not self.cancelled or self._task is None:
                    raise
                self._task.uncancel()
                await self._end_unanswered()
                return
            except Exception as error:
                outcome = error_data(error, self.method)
            await self.answer(outcome)
        finally:
            self.done = True
            if self._window is not None:
                self._window.cancel()
            if self._watcher is not None:
                self._watcher.cancel()
            if self.live.exchanges.get(self.key) is self:
                del self.live.exchanges[self.key]

    def cancel(self) -> None:
        """The client cancelled the request (`notifications/cancelled`): it is never answered."""
        if self.done or self.cancelled:
            return
        self.cancelled = True
        self.cancel_requested.set()
        if self._task is not None:
            self._task.cancel()

    async def answer(self, outcome: dict[str, Any] | ErrorData) -> None:
        self.done = True
        if not self.sse:
            if self._window is not None:
                self._window.cancel()
            if self.run is not None:
                self.store.forget(self.key, self.run)
            body = answer_json(self.request_id, outcome)
            await self.send(
                {
                    "type": "http.response.start",
                    "status": 200,
                    "headers": [*json_headers(self.live.session_id), (b"content-length", str(len(body)).encode())],
                }
            )
            await self.send({"type": "http.response.body", "body": body})
            return
        message: JSONRPCMessage
        if isinstance(outcome, ErrorData):
            message = JSONRPCError(jsonrpc="2.0", id=self.request_id, error=outcome)
        else:
            message = JSONRPCResponse(jsonrpc="2.0", id=self.request_id, result=outcome)
        assert self._lock is not None
        async with self._lock:
            event_id = await self.store.store_event(self.key, message)
            if self.open:
                self.open = False
                await self.send({"type": "http.response.body", "body": _frame(event_id, message), "more_body": False})

    async def _end_unanswered(self) -> None:
        """A cancelled request's response ends with no answer (the spec: nothing more is sent for it)."""
        if self.run is not None:
            self.store.forget(self.key, self.run)
        if not self.sse:
            self.sse = True
            await self.send(
                {"type": "http.response.start", "status": 200, "headers": sse_headers(self.live.session_id)}
            )
            await self.send({"type": "http.response.body", "body": b""})
            return
        assert self._lock is not None
        async with self._lock:
            if self.open:
                self.open = False
                await self.send({"type": "http.response.body", "body": b"", "more_body": False})

    # The SSE stream

    async def _open_sse(self) -> None:
        if self.sse:
            return
        self.sse = True
        self._lock = asyncio.Lock()
        async with self._lock:  # (taken before any await: what is emitted meanwhile goes after the priming event)
            if self._window is not None:
                self._window.cancel()
            await self.send(
                {"type": "http.response.start", "status": 200, "headers": sse_headers(self.live.session_id)}
            )
            if self.receive is not None:
                self._watcher = asyncio.get_running_loop().create_task(self._watch(self.receive))
            if self.resumable:
                priming_id = await self.store.store_event(self.key, None)
                await self.send(
                    {"type": "http.response.body", "body": priming_event(priming_id, self.retry_ms), "more_body": True}
                )

    async def _emit(self, message: JSONRPCMessage) -> None:
        await self._open_sse()
        assert self._lock is not None
        async with self._lock:
            event_id = await self.store.store_event(self.key, message)
            if self.open:
                await self.send({"type": "http.response.body", "body": _frame(event_id, message), "more_body": True})

    async def _watch(self, receive: Receive) -> None:
        """The client leaving an open stream: the call goes on, and what it sends is kept for its resumption."""
        while (await receive())["type"] != "http.disconnect":
            pass
        if self.open and not self.done:
            self.open = False
            if self.run is not None and not self.run.detached:
                self.store.detached(self.run)
            self.live.on_detached()

    def _window_elapsed(self) -> None:
        """The call has been silent for the JSON window: open its SSE stream, so that it can be resumed."""
        self._window = None
        if not self.sse and not self.done:
            _spawn(self._open_sse())

    async def close_sse_stream(self) -> None:
        """The app's `ctx.close_sse_stream()`: the client resumes the stream with a GET (on any replica)."""
        if self.done:
            return
        await self._open_sse()
        if self.run is not None and not self.run.detached:
            self.store.detached(self.run)
        await self._close()

    async def close_standalone_sse_stream(self) -> None:
        self.live.close_get_stream()

    def close(self) -> None:
        """Close the stream now (the store's call: the stream was silent too long, or the replica drains)."""
        if self.sse and self.open and not self.done:
            _spawn(self._close())

    async def _close(self) -> None:
        assert self._lock is not None
        async with self._lock:
            if self.open:
                self.open = False
                self.live.on_detached()
                await self.send({"type": "http.response.body", "body": b"", "more_body": False})


def _frame(event_id: str, message: JSONRPCMessage) -> bytes:
    return sse_event(event_id or None, message.model_dump_json(by_alias=True, exclude_unset=True))


_background: set[asyncio.Task[None]] = set()


def _spawn(coroutine: Any) -> None:
    task = asyncio.get_running_loop().create_task(coroutine)
    _background.add(task)
    task.add_done_callback(_background.discard)


def fail_pending(live: LiveSession) -> None:
    """The live session ended: no answer will reach the requests it still waits for."""
    for future in live.pending.values():
        if not future.done():
            future.set_result(ErrorData(code=CONNECTION_CLOSED, message="Connection closed"))
    live.pending.clear()
