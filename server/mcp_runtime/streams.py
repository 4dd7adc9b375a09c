"""GET streams: a session's channel for server-initiated messages, kept apart from its live transport.

The SDK holds a session's GET stream inside its transport, so a client that keeps its GET stream open (the
official client does) pins the whole transport in memory for as long as it is connected. Here the GET stream
is a light SSE response fed by this hub; a live transport forwards its standalone messages through the session
events (`session_events.py`, in process or over Redis) to whichever replica holds the GET stream, and can be
released when idle while the client stays connected.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator

import anyio
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream
from starlette.types import Receive, Send

logger = logging.getLogger(__name__)

BUFFER = 64


class StreamBusy(Exception):
    """The session already has a GET stream here (the protocol allows one)."""


Delivery = tuple[str | None, str]  # (event id for Last-Event-ID, or None; the JSON-RPC message)


class LocalStreamHub:
    """The GET streams this process holds, by session id. Messages reach it through the session events."""

    def __init__(self) -> None:
        self._streams: dict[str, MemoryObjectSendStream[Delivery]] = {}

    @contextlib.contextmanager
    def subscribe(self, session_id: str) -> Iterator[MemoryObjectReceiveStream[Delivery]]:
        if session_id in self._streams:
            raise StreamBusy(session_id)
        sender, receiver = anyio.create_memory_object_stream[Delivery](BUFFER)
        self._streams[session_id] = sender
        try:
            yield receiver
        finally:
            if self._streams.get(session_id) is sender:
                del self._streams[session_id]
            sender.close()
            receiver.close()

    def holds(self, session_id: str) -> bool:
        return session_id in self._streams

    def deliver(self, session_id: str, event_id: str | None, message: str) -> bool:
        sender = self._streams.get(session_id)
        if sender is None:
            return False
        try:
            sender.send_nowait((event_id, message))
        except anyio.WouldBlock:
            logger.warning("GET stream of session %s is not keeping up; a message was dropped", session_id[:64])
            return False
        except (anyio.ClosedResourceError, anyio.BrokenResourceError):
            return False
        return True

    def close(self, session_id: str) -> None:
        sender = self._streams.pop(session_id, None)
        if sender is not None:
            sender.close()

    def subscribed(self) -> list[str]:
        return list(self._streams)


def sse_event(event_id: str | None, message: str) -> bytes:
    head = b"id: " + event_id.encode() + b"\r\n" if event_id else b""
    return head + b"event: message\r\ndata: " + message.encode() + b"\r\n\r\n"


def _event_order(event_id: str) -> tuple[int, int]:
    millis, _, seq = event_id.partition("-")
    return (int(millis), int(seq or 0)) if millis.isdigit() and (seq or "0").isdigit() else (0, 0)


async def serve_sse(
    messages: MemoryObjectReceiveStream[Delivery],
    session_id: str,
    keepalive_seconds: float,
    receive: Receive,
    send: Send,
    replayed: list[tuple[str, str]] | None = None,
) -> None:
    """Answer a GET with an SSE stream: `replayed` first, then `messages`, until the client leaves or the
    stream is closed (the session ended)."""
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
    last_replayed = (0, 0)
    for kept_id, kept in replayed or []:
        await send({"type": "http.response.body", "body": sse_event(kept_id, kept), "more_body": True})
        last_replayed = _event_order(kept_id)
    async with anyio.create_task_group() as tg:

        async def until_disconnect() -> None:
            while (await receive())["type"] != "http.disconnect":
                pass
            tg.cancel_scope.cancel()

        tg.start_soon(until_disconnect)
        try:
            while True:
                with anyio.move_on_after(keepalive_seconds):
                    event_id, message = await messages.receive()
                    if event_id is not None and _event_order(event_id) <= last_replayed:
                        continue  # already sent from the log
                    await send({"type": "http.response.body", "body": sse_event(event_id, message), "more_body": True})
                    continue
                await send({"type": "http.response.body", "body": b": keep-alive\r\n\r\n", "more_body": True})
        except (anyio.EndOfStream, anyio.ClosedResourceError):
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        tg.cancel_scope.cancel()
