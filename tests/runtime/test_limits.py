"""The bounded uvicorn protocols (`web/limits.py`): uvicorn in this process, a trivial ASGI app, raw sockets.

Each test runs against both HTTP parsers uvicorn offers (httptools and h11), with small bounds so that the
deadlines pass in a fraction of a second.
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import anyio
import pytest
import uvicorn
from anyio.abc import SocketStream

from mcp_runtime.web.limits import bounded_protocols

MAX_HEADER_BYTES = 2048
HEADER_TIMEOUT = 0.4
BODY_TIMEOUT = 0.4
SLOW_APP_SECONDS = 1.0  # longer than either deadline: the deadlines are on arrival, not on the answer
GRACE = 3.0  # how long past a deadline a drop may take before the test fails


@dataclass
class Recorder:
    """A trivial ASGI app: reads the whole body, records it, answers 200 with its length."""

    processed: list[bytes] = field(default_factory=list)
    disconnects: int = 0

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        assert scope["type"] == "http"
        body = b""
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                self.disconnects += 1
                return
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        if scope["path"] == "/slow":
            await anyio.sleep(SLOW_APP_SECONDS)
        self.processed.append(body)
        answer = str(len(body)).encode()
        headers = [(b"content-type", b"text/plain"), (b"content-length", str(len(answer)).encode())]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": answer})


@dataclass
class Served:
    port: int
    app: Recorder

    async def connect(self) -> SocketStream:
        return await anyio.connect_tcp("127.0.0.1", self.port)


@pytest.fixture(params=["httptools", "h11"])
async def served(request: pytest.FixtureRequest) -> AsyncIterator[Served]:
    protocols = bounded_protocols(MAX_HEADER_BYTES, HEADER_TIMEOUT, BODY_TIMEOUT)
    app = Recorder()
    config = uvicorn.Config(
        app, http=protocols[request.param], lifespan="off", log_level="warning", access_log=False, loop="asyncio"
    )
    server = uvicorn.Server(config)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    # A plain task, not a task group: pytest-asyncio may run a fixture's setup and teardown in different tasks.
    serving = asyncio.create_task(server.serve([sock]))
    try:
        with anyio.fail_after(10):
            while not server.started:
                assert not serving.done(), serving
                await anyio.sleep(0.01)
        yield Served(sock.getsockname()[1], app)
    finally:
        server.should_exit = True
        await serving
        sock.close()


def head(path: str = "/", extra: str = "", length: int | None = None) -> bytes:
    method = "GET" if length is None else "POST"
    body_header = "" if length is None else f"Content-Length: {length}\r\n"
    return f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{body_header}{extra}\r\n".encode()


async def read_until_closed(stream: SocketStream, within: float) -> tuple[bytes, float]:
    """Everything the server sends until it closes the connection (at most `within` seconds), and how long
    that took."""
    started = time.monotonic()
    received = b""
    with anyio.fail_after(within):
        while True:
            try:
                received += await stream.receive()
            except (anyio.EndOfStream, anyio.BrokenResourceError, ConnectionResetError):
                return received, time.monotonic() - started


async def read_response(stream: SocketStream) -> bytes:
    """One whole response (head and a Content-Length body)."""
    received = b""
    with anyio.fail_after(10):
        while b"\r\n\r\n" not in received:
            received += await stream.receive()
        top, _, rest = received.partition(b"\r\n\r\n")
        length = next(
            int(line.split(b":", 1)[1]) for line in top.split(b"\r\n") if line.lower().startswith(b"content-length:")
        )
        while len(rest) < length:
            rest += await stream.receive()
    return received


async def test_a_normal_request_passes(served: Served) -> None:
    async with await served.connect() as stream:
        await stream.send(head(length=5) + b"hello")
        response = await read_response(stream)
    assert response.startswith(b"HTTP/1.1 200")
    assert response.endswith(b"\r\n\r\n5")
    assert served.app.processed == [b"hello"]


async def test_a_request_sent_in_small_pieces_within_the_deadline_passes(served: Served) -> None:
    whole = head(length=5, extra="X-Padding: " + "p" * 200 + "\r\n") + b"hello"
    async with await served.connect() as stream:
        for start in range(0, len(whole), 40):
            await stream.send(whole[start : start + 40])
            await anyio.sleep(0.01)
        response = await read_response(stream)
    assert response.startswith(b"HTTP/1.1 200")
    assert served.app.processed == [b"hello"]


async def test_keep_alive_requests_each_get_their_own_bounds(served: Served) -> None:
    big_but_allowed = "X-Padding: " + "p" * (MAX_HEADER_BYTES - 200) + "\r\n"
    async with await served.connect() as stream:
        for n in range(3):
            await stream.send(head(length=1, extra=big_but_allowed) + str(n).encode())
            assert (await read_response(stream)).startswith(b"HTTP/1.1 200")
            await anyio.sleep(HEADER_TIMEOUT / 2)  # idle between requests, under uvicorn's keep-alive
    assert served.app.processed == [b"0", b"1", b"2"]


async def test_a_slow_answer_is_not_cut_by_the_arrival_deadlines(served: Served) -> None:
    async with await served.connect() as stream:
        await stream.send(head("/slow", length=2) + b"ok")
        response = await read_response(stream)
    assert response.startswith(b"HTTP/1.1 200")
    assert served.app.processed == [b"ok"]


@pytest.mark.parametrize("pieces", [1, 8], ids=["one-read", "many-reads"])
async def test_a_head_over_the_limit_gets_431_and_is_not_processed(served: Served, pieces: int) -> None:
    whole = head(length=2, extra="X-Big: " + "b" * MAX_HEADER_BYTES + "\r\n") + b"ok"
    size = -(-len(whole) // pieces)
    async with await served.connect() as stream:
        for start in range(0, len(whole), size):
            try:
                await stream.send(whole[start : start + size])
            except (anyio.BrokenResourceError, ConnectionResetError):
                break  # refused before the rest arrived
        received, _ = await read_until_closed(stream, 10)
    assert received.startswith(b"HTTP/1.1 431 "), received[:200]
    assert b"MCP_MAX_REQUEST_HEADER_BYTES" in received
    assert served.app.processed == []


async def test_a_head_that_does_not_arrive_in_time_is_dropped(served: Served) -> None:
    async with await served.connect() as stream:
        await stream.send(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n")  # never finished
        received, took = await read_until_closed(stream, HEADER_TIMEOUT + GRACE)
    assert received == b""
    assert took >= HEADER_TIMEOUT * 0.8
    assert served.app.processed == []


async def test_a_connection_that_sends_nothing_is_dropped(served: Served) -> None:
    async with await served.connect() as stream:
        received, took = await read_until_closed(stream, HEADER_TIMEOUT + GRACE)
    assert received == b""
    assert took >= HEADER_TIMEOUT * 0.8


async def test_a_body_that_stalls_is_dropped_and_not_processed(served: Served) -> None:
    async with await served.connect() as stream:
        await stream.send(head(length=10) + b"abc")  # 7 bytes short, for ever
        received, took = await read_until_closed(stream, BODY_TIMEOUT + GRACE)
    assert received == b""
    assert took >= BODY_TIMEOUT * 0.8
    with anyio.fail_after(5):
        while not served.app.disconnects:  # the app was reading the body: it sees the client go
            await anyio.sleep(0.01)
    assert served.app.processed == []
