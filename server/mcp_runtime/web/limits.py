"""uvicorn's HTTP/1.1 protocols with bounds on what a client may send before the app sees a request.

- Request line and headers: at most `max_header_bytes` (counted on the raw bytes, before either parser
  buffers them), then 431 and the connection closed. uvicorn bounds them only with h11, and only while a head
  is incomplete (answering 400); with httptools, its fast default, it has no bound at all.
- A request must arrive in time: its line and headers within `header_timeout` of its first byte (or of the
  connection's opening), then its body within `body_timeout`; otherwise the connection is dropped (the app,
  if it was reading the body, sees a disconnect and processes nothing). A few slow clients cannot hold
  connections forever.
"""

from __future__ import annotations

import asyncio

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

_REASON = b"Request Header Fields Too Large"
_BODY_431 = (
    b'{"jsonrpc":"2.0","id":null,"error":{"code":-32600,"message":"Request headers larger than the limit '
    b'(MCP_MAX_REQUEST_HEADER_BYTES)"}}'
)


def _response_431() -> bytes:
    return (
        b"HTTP/1.1 431 "
        + _REASON
        + b"\r\ncontent-type: application/json\r\ncontent-length: "
        + str(len(_BODY_431)).encode()
        + b"\r\nconnection: close\r\n\r\n"
        + _BODY_431
    )


HEAD, BODY, DONE = "head", "body", "done"


class _ArrivalGuard(asyncio.Protocol):
    """What both protocols share: the size of the current request head, and a deadline for the request to
    arrive (its head within `header_timeout`, then its body within `body_timeout`).

    The deadline timer is armed only while a request is incomplete after a chunk was read: a request that
    arrives whole in one read (nearly all of them) costs no timer at all.
    """

    max_header_bytes = 32 * 1024
    header_timeout = 10.0
    body_timeout = 30.0

    transport: asyncio.Transport
    loop: asyncio.AbstractEventLoop

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._head_bytes = 0
        self._head_tail = b""
        self._phase = HEAD
        self._timer: asyncio.TimerHandle | None = None
        self._timer_phase: str | None = None
        self._sync_timer()  # a connection that sends nothing at all is dropped too

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_timer()
        super().connection_lost(exc)

    def _head_too_large(self, data: bytes) -> bool:
        """Count `data` into the current head (up to its blank line); whether the head is past the limit."""
        if self._phase is not HEAD:
            return False
        window = self._head_tail + data if self._head_tail else data
        end = window.find(b"\r\n\r\n")
        if end >= 0:
            size = self._head_bytes + end + 4 - len(self._head_tail)
            self._head_bytes, self._head_tail = 0, b""
            return size > self.max_header_bytes
        self._head_bytes += len(data)
        self._head_tail = window[-3:]
        return self._head_bytes > self.max_header_bytes

    def _next_request(self) -> None:
        """The response is complete: whatever arrives next is a new request's head (keep-alive waits)."""
        self._phase = HEAD
        self._head_bytes, self._head_tail = 0, b""
        self._cancel_timer()

    def _sync_timer(self) -> None:
        """After a read: a deadline while the request is incomplete, none once it has arrived."""
        phase = self._phase
        if phase is DONE:
            self._cancel_timer()
        elif self._timer_phase is not phase:
            self._cancel_timer()
            timeout = self.header_timeout if phase is HEAD else self.body_timeout
            self._timer = self.loop.call_later(timeout, self._timed_out)
            self._timer_phase = phase

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
            self._timer_phase = None

    def _timed_out(self) -> None:
        self._timer = None
        self._timer_phase = None
        if self._phase is not DONE and not self.transport.is_closing():
            self.transport.close()  # the app, if waiting for the body, sees a disconnect: nothing is processed

    def _refuse_head(self) -> None:
        self._cancel_timer()
        self._phase = DONE
        if not self.transport.is_closing():
            self.transport.write(_response_431())
            self.transport.close()


class BoundedHttpToolsProtocol(_ArrivalGuard, HttpToolsProtocol):
    def data_received(self, data: bytes) -> None:
        if self._head_too_large(data):
            self._refuse_head()  # before httptools buffers any of it
            return
        super().data_received(data)
        if self._timer is not None or self._phase is not DONE:
            self._sync_timer()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._phase = HEAD

    def on_headers_complete(self) -> None:
        self._phase = BODY
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self._phase = DONE
        super().on_message_complete()

    def on_response_complete(self) -> None:
        self._next_request()
        super().on_response_complete()


class BoundedH11Protocol(_ArrivalGuard, H11Protocol):
    def data_received(self, data: bytes) -> None:
        if self._head_too_large(data):
            self._refuse_head()
            return
        super().data_received(data)
        state = self.conn.their_state
        if state is h11.IDLE:
            self._phase = HEAD
        elif state is h11.SEND_BODY:
            self._phase = BODY
        else:
            self._phase = DONE
        self._sync_timer()

    def on_response_complete(self) -> None:
        self._next_request()
        super().on_response_complete()


def bounded_protocols(
    max_header_bytes: int, header_timeout: float, body_timeout: float
) -> dict[str, type[asyncio.Protocol]]:
    """The protocol classes for uvicorn's `http=` setting, by parser name, with these bounds."""
    bounds = {"max_header_bytes": max_header_bytes, "header_timeout": header_timeout, "body_timeout": body_timeout}
    return {
        "httptools": type("HttpToolsProtocol", (BoundedHttpToolsProtocol,), bounds),
        "h11": type("H11Protocol", (BoundedH11Protocol,), bounds),
    }
