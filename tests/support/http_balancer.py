"""A real HTTP reverse proxy with no affinity, for clients in other processes (the conformance suite, the
TypeScript and Go SDK clients): each HTTP request goes to the next replica in turn.

It runs uvicorn in a thread of the test process, on a free loopback port, and forwards with httpx2:
- the request as it came, Host header included (as a proxy that preserves the host does), less hop-by-hop
  headers; the body is read whole first (MCP requests are small);
- the response streamed chunk by chunk as the replica writes it (SSE flows event by event, never buffered);
  a client that goes away closes the replica's connection too;
- passive health: a replica that refuses the connection is skipped (the request never reached it, so the
  next one may take it); when every replica refuses, the answer is 502.

For tests of stream resumption it can cut streamed responses as a broken network would: the connection to
the client is closed mid-body (no final chunk) and so is the one to the replica (`cut_next_stream`,
`cut_streams`). It remembers which replica holds each streamed response still open (`streams`).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import threading
import time
from collections import Counter
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass, field
from typing import Any

import httpx2
import uvicorn

from tests.support.procs import free_port

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

HOP_BY_HOP = frozenset(
    {
        b"connection",
        b"keep-alive",
        b"proxy-authenticate",
        b"proxy-authorization",
        b"proxy-connection",
        b"te",
        b"trailer",
        b"transfer-encoding",
        b"upgrade",
    }
)


@dataclass
class Stream:
    """A streamed (text/event-stream) response on its way through the balancer."""

    method: str
    port: int
    cut: asyncio.Event = field(default_factory=asyncio.Event, repr=False)


@dataclass
class Forwarded:
    """One request the balancer forwarded: where to, and the replica's status code."""

    method: str
    port: int
    status: int
    last_event_id: str | None


@dataclass
class _ArmedCut:
    method: str | None
    after: float


class HttpBalancer:
    """Round robin over `ports` (replicas on 127.0.0.1), per HTTP request, with no affinity."""

    def __init__(self, ports: list[int]) -> None:
        self.ports = list(ports)
        self.port = free_port()
        self._next = itertools.cycle(range(len(self.ports)))
        self._lock = threading.Lock()
        self._streams: list[Stream] = []
        self._armed: list[_ArmedCut] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._http: httpx2.AsyncClient | None = None
        self._thread: threading.Thread | None = None
        self._server: uvicorn.Server | None = None
        self.forwarded: list[Forwarded] = []
        self.refused: Counter[int] = Counter()
        self.cuts = 0

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"{self.base}/mcp"

    # Control, from the test's thread.

    def route_to(self, ports: list[int]) -> None:
        """Balance over these replicas from now on (for replicas started after the balancer's port was known)."""
        with self._lock:
            self.ports = list(ports)
            self._next = itertools.cycle(range(len(self.ports)))

    def start(self, timeout: float = 10) -> HttpBalancer:
        config = uvicorn.Config(
            self._app,
            host="127.0.0.1",
            port=self.port,
            lifespan="off",
            interface="asgi3",
            proxy_headers=False,
            log_config=None,
            log_level="warning",
            access_log=False,
            timeout_graceful_shutdown=1,
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._run, name=f"http-balancer-{self.port}", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"the balancer did not start on port {self.port}")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        self.cut_streams()
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(10)

    def __enter__(self) -> HttpBalancer:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()

    def streams(self, method: str | None = None) -> list[Stream]:
        """The streamed responses still open (optionally only those answering `method`)."""
        with self._lock:
            return [s for s in self._streams if method is None or s.method == method]

    def cut_next_stream(self, *, after: float, method: str | None = "POST") -> None:
        """Cut the next streamed response (to a request with `method`) `after` seconds from its start."""
        with self._lock:
            self._armed.append(_ArmedCut(method, after))

    def cut_streams(self, port: int | None = None) -> int:
        """Cut every streamed response open now (or only those from replica `port`); how many."""
        chosen = [s for s in self.streams() if port is None or s.port == port]
        if self._loop is not None:
            for stream in chosen:
                self._loop.call_soon_threadsafe(stream.cut.set)
        return len(chosen)

    def by_port(self, method: str | None = None) -> Counter[int]:
        return Counter(f.port for f in list(self.forwarded) if method is None or f.method == method)

    # The proxy, in its own thread and event loop.

    def _run(self) -> None:
        assert self._server is not None
        asyncio.run(self._serve(self._server))

    async def _serve(self, server: uvicorn.Server) -> None:
        self._loop = asyncio.get_running_loop()
        timeout = httpx2.Timeout(connect=2.0, read=None, write=10.0, pool=10.0)
        limits = httpx2.Limits(max_connections=None, max_keepalive_connections=20)
        async with httpx2.AsyncClient(timeout=timeout, limits=limits, follow_redirects=False) as http:
            self._http = http
            await server.serve()

    def _pick(self) -> int:
        with self._lock:
            return self.ports[next(self._next)]

    def _take_armed(self, method: str) -> _ArmedCut | None:
        with self._lock:
            for armed in self._armed:
                if armed.method is None or armed.method == method:
                    self._armed.remove(armed)
                    return armed
        return None

    async def _app(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        assert self._http is not None
        body = bytearray()
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body += message.get("body", b"")
            if not message.get("more_body", False):
                break
        method: str = scope["method"]
        headers = [(k, v) for k, v in scope["headers"] if k.lower() not in HOP_BY_HOP]
        target = scope.get("raw_path") or scope["path"].encode()
        if scope.get("query_string"):
            target += b"?" + scope["query_string"]
        last_event_id = next((v.decode() for k, v in headers if k.lower() == b"last-event-id"), None)
        response: httpx2.Response | None = None
        port = 0
        for _ in range(len(self.ports)):
            port = self._pick()
            request = httpx2.Request(
                method, f"http://127.0.0.1:{port}{target.decode()}", headers=headers, content=bytes(body)
            )
            try:
                response = await self._http.send(request, stream=True)
                break
            except httpx2.ConnectError:
                self.refused[port] += 1
        if response is None:
            await _answer(send, 502, b"every replica refused the connection\n")
            return
        self.forwarded.append(Forwarded(method, port, response.status_code, last_event_id))
        try:
            await self._relay(method, port, response, receive, send)
        finally:
            await response.aclose()

    async def _relay(self, method: str, port: int, response: httpx2.Response, receive: Receive, send: Send) -> None:
        headers = [(k, v) for k, v in response.headers.raw if k.lower() not in HOP_BY_HOP]
        await send({"type": "http.response.start", "status": response.status_code, "headers": headers})
        streamed = response.headers.get("content-type", "").startswith("text/event-stream")
        stream = Stream(method, port)
        armed = self._take_armed(method) if streamed else None
        if streamed:
            with self._lock:
                self._streams.append(stream)
        outcome: list[str] = []

        async def pump() -> None:
            async for chunk in response.aiter_raw():
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": b"", "more_body": False})
            outcome.append("done")

        async def client_gone() -> None:
            while (await receive())["type"] != "http.disconnect":
                pass
            outcome.append("client gone")

        async def cut() -> None:
            if armed is None:
                await stream.cut.wait()
            else:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stream.cut.wait(), armed.after)
            outcome.append("cut")

        tasks = [asyncio.ensure_future(t()) for t in (pump, client_gone, cut)]
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                if not task.cancelled() and task.exception() is not None:
                    outcome.append(f"error: {task.exception()!r}")
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            if streamed:
                with self._lock:
                    self._streams.remove(stream)
        if outcome and outcome[0] == "cut":
            self.cuts += 1
            # Returning with the body unfinished: uvicorn closes the client's connection (no final chunk), and
            # the caller closes the one to the replica.


async def _answer(send: Send, status: int, body: bytes) -> None:
    headers = [(b"content-type", b"text/plain"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body, "more_body": False})
