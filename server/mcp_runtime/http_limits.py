"""uvicorn's HTTP/1.1 protocols with bounds on what a client may send before the app sees a request.

- Request line and headers: at most `max_header_bytes` (counted on the raw bytes, before either parser
  buffers them), then 431 and the connection closed. uvicorn bounds them only with h11, and only while a head
  is incomplete (answering 400); with httptools, its fast default, it has no bound at all.
- A request's line and headers must arrive within `header_timeout` of its first byte (or of the connection's
  opening): a few slow clients cannot hold connections forever. (The body's timeout is the app's.)
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


class _HeadGuard(asyncio.Protocol):
    """The per-connection state both protocols share: the bytes of the current request head, its deadline."""

    max_header_bytes = 32 * 1024
    header_timeout = 10.0

    transport: asyncio.Transport
    loop: asyncio.AbstractEventLoop

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._guard_start()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm_head_timer()
        super().connection_lost(exc)

    def _guard_start(self) -> None:
        self._in_head = True
        self._head_bytes = 0
        self._head_tail = b""
        self._head_timer: asyncio.TimerHandle | None = None
        self._arm_head_timer()

    def _head_too_large(self, data: bytes) -> bool:
        """Count `data` into the current head (up to its blank line); whether the head is past the limit."""
        if not self._in_head:
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

    def _head_started(self) -> None:
        self._in_head = True
        self._head_bytes, self._head_tail = 0, b""

    def _head_done(self) -> None:
        self._in_head = False
        self._disarm_head_timer()

    def _arm_head_timer(self) -> None:
        if self._head_timer is None:
            self._head_timer = self.loop.call_later(self.header_timeout, self._head_timed_out)

    def _disarm_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_timed_out(self) -> None:
        self._head_timer = None
        if self._in_head and not self.transport.is_closing():
            self.transport.close()

    def _refuse_head(self) -> None:
        self._disarm_head_timer()
        self._in_head = False
        if not self.transport.is_closing():
            self.transport.write(_response_431())
            self.transport.close()


class BoundedHttpToolsProtocol(_HeadGuard, HttpToolsProtocol):
    def data_received(self, data: bytes) -> None:
        if self._head_too_large(data):
            self._refuse_head()  # before httptools buffers any of it
            return
        super().data_received(data)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._arm_head_timer()

    def on_headers_complete(self) -> None:
        self._head_done()
        super().on_headers_complete()

    def on_response_complete(self) -> None:
        self._head_started()  # what arrives next is the next request's head (uvicorn's keep-alive waits)
        super().on_response_complete()


class BoundedH11Protocol(_HeadGuard, H11Protocol):
    def data_received(self, data: bytes) -> None:
        if self._head_too_large(data):
            self._refuse_head()
            return
        if self._in_head:
            self._arm_head_timer()
        super().data_received(data)
        if self._in_head and self.conn.their_state is not h11.IDLE:
            self._head_done()

    def on_response_complete(self) -> None:
        self._head_started()
        super().on_response_complete()


def bounded_protocols(max_header_bytes: int, header_timeout: float) -> dict[str, type[asyncio.Protocol]]:
    """The protocol classes for uvicorn's `http=` setting, by parser name, with these bounds."""
    bounds = {"max_header_bytes": max_header_bytes, "header_timeout": header_timeout}
    return {
        "httptools": type("HttpToolsProtocol", (BoundedHttpToolsProtocol,), bounds),
        "h11": type("H11Protocol", (BoundedH11Protocol,), bounds),
    }
