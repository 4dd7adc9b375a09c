"""Server-sent events: the responses of a GET stream and of a resumed POST stream, their events and keep-alives."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import NamedTuple

import anyio
from starlette.types import Receive, Send


def entry_order(entry: str) -> tuple[int, int]:
    """An event log entry's place (`{millis}-{seq}`), for skipping what a replay already sent."""
    millis, _, seq = entry.partition("-")
    return int(millis), int(seq or 0)


class Delivery(NamedTuple):
    event_id: str | None  # the SSE id (for Last-Event-ID), or None
    message: str  # the JSON-RPC message
    entry: str | None = None  # its place in the session's event log, to skip what a replay already sent
    final: bool = False  # the answer that ends a POST stream


def sse_event(event_id: str | None, message: str) -> bytes:
    head = b"id: " + event_id.encode() + b"\r\n" if event_id else b""
    return head + b"event: message\r\ndata: " + message.encode() + b"\r\n\r\n"


def priming_event(event_id: str, retry_ms: int | None) -> bytes:
    """An event with an id and empty data (SEP-1699): the client may resume from here, after `retry_ms`."""
    retry = b"retry: " + str(retry_ms).encode() + b"\r\n" if retry_ms is not None else b""
    return b"id: " + event_id.encode() + b"\r\n" + retry + b"data: \r\n\r\n"


CatchUp = Callable[[str | None], Awaitable[list[Delivery]]]


class Inbox:
    """The deliveries waiting for one SSE stream: bounded, with no task, lock or event of its own (a held GET
    stream costs memory for as long as its client stays; anyio's memory streams cost several kilobytes each).
    Its errors are anyio's: `send_nowait` raises WouldBlock when full and ClosedResourceError once closed;
    `receive` raises EndOfStream once closed and drained."""

    __slots__ = ("_items", "_limit", "_waiter", "closed")

    def __init__(self, limit: int) -> None:
        self._items: list[Delivery] = []
        self._limit = limit
        self._waiter: asyncio.Future[None] | None = None
        self.closed = False

    def send_nowait(self, delivery: Delivery) -> None:
        if self.closed:
            raise anyio.ClosedResourceError
        if len(self._items) >= self._limit:
            raise anyio.WouldBlock
        self._items.append(delivery)
        self._wake()

    def close(self) -> None:
        self.closed = True
        self._wake()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def receive(self) -> Delivery:
        while True:
            delivery = await self.receive_within(None)
            if delivery is not None:
                return delivery

    async def receive_within(self, seconds: float | None) -> Delivery | None:
        """The next delivery, or None when `seconds` pass first."""
        if not self._items and not self.closed:
            loop = asyncio.get_running_loop()
            self._waiter = waiter = loop.create_future()
            timer = loop.call_later(seconds, _expire, waiter) if seconds is not None else None
            try:
                await waiter
            finally:
                self._waiter = None
                if timer is not None:
                    timer.cancel()
        if self._items:
            return self._items.pop(0)
        if self.closed:
            raise anyio.EndOfStream
        return None


def _expire(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)


async def serve_sse(
    messages: Inbox,
    session_id: str,
    keepalive_seconds: float,
    receive: Receive,
    send: Send,
    replayed: list[Delivery] | None = None,
    *,
    priming: str | None = None,
    retry_ms: int | None = None,
    until_answer: bool = False,
    catch_up: CatchUp | None = None,
    catch_up_seconds: float = 5.0,
) -> None:
    """Answer a GET with an SSE stream: a priming event if given, `replayed`, then `messages`, until the client
    leaves, the stream is closed here (the session ended, the replica drains: a `retry:` hint goes first), or,
    with `until_answer` (a resumed POST stream), its answer has been sent.

    Each event goes out once, in the log's order: one already sent (from the replay, or by `catch_up`) is
    skipped when it comes again. `catch_up(last entry sent)`, asked every `catch_up_seconds` while nothing
    comes, gives what the log holds after it: what live delivery missed (a pub/sub connection that was down)."""
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [
                (b"content-type", b"text/event-stream"),
                (b"cache-control", b"no-cache, no-transform"),
                (b"x-accel-buffering", b"no"),
                (b"mcp-session-id", session_id.encode()),
            ],
        }
    )
    last_sent: str | None = None  # the last log entry sent

    async def body(chunk: bytes, more: bool = True) -> None:
        await send({"type": "http.response.body", "body": chunk, "more_body": more})

    async def deliver(deliveries: list[Delivery]) -> bool:
        """Send what was not sent yet; True once the answer that ends the stream has gone out."""
        nonlocal last_sent
        for delivery in deliveries:
            if delivery.entry:
                if last_sent is not None and entry_order(delivery.entry) <= entry_order(last_sent):
                    continue  # already sent
                last_sent = delivery.entry
            await body(sse_event(delivery.event_id, delivery.message))
            if until_answer and delivery.final:
                await body(b"", more=False)
                return True
        return False

    if priming is not None:
        await body(priming_event(priming, retry_ms))
    if await deliver(replayed or []):
        return
    poll = min(keepalive_seconds, catch_up_seconds) if catch_up is not None else keepalive_seconds
    quiet = 0.0

    async def until_disconnect() -> None:
        while (await receive())["type"] != "http.disconnect":
            pass
        left.append(True)
        messages.close()

    left: list[bool] = []  # the client went away (a task of its own watches for it)
    watcher = asyncio.get_running_loop().create_task(until_disconnect())
    try:
        while True:
            delivery = await messages.receive_within(poll)
            if delivery is not None:
                if await deliver([delivery]):
                    break
                quiet = 0.0
                continue
            if catch_up is not None and await deliver(await catch_up(last_sent)):
                break
            quiet += poll
            if quiet >= keepalive_seconds:
                quiet = 0.0
                await body(b": keep-alive\r\n\r\n")
    except (anyio.EndOfStream, anyio.ClosedResourceError):
        if not left:  # closed here (the session ended, the replica drains): the client comes back after `retry:`
            await body(b"retry: " + str(retry_ms).encode() + b"\r\n\r\n" if retry_ms is not None else b"", more=False)
    finally:
        watcher.cancel()
