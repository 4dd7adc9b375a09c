"""GET streams: a session's channel for server-initiated messages, kept apart from its live transport.

The SDK holds a session's GET stream inside its transport, so a client that keeps its GET stream open (the
official client does) pins the whole transport in memory for as long as it is connected. Here the GET stream
is a light SSE response fed by a hub; the transport forwards its standalone messages to the hub, and can be
released when idle while the client stays connected. The hub is also the seam where messages cross replicas
(the redis backend's hub publishes them over Redis).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from typing import Protocol

import anyio
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream
from starlette.types import Receive, Send

logger = logging.getLogger(__name__)

BUFFER = 64


class StreamBusy(Exception):
    """The session already has a GET stream (the protocol allows one)."""


class StreamHub(Protocol):
    def subscribe(self, session_id: str) -> contextlib.AbstractContextManager[MemoryObjectReceiveStream[str]]: ...

    async def publish(self, session_id: str, message: str) -> bool:
        """Deliver a JSON-RPC message to the session's GET stream; False if nobody holds one."""
        ...

    def close(self, session_id: str) -> None:
        """End the session's GET stream, if this process holds it (the session ended)."""
        ...

    def subscribed(self) -> list[str]: ...


class LocalStreamHub:
    """GET streams held by this process."""

    def __init__(self) -> None:
        self._streams: dict[str, MemoryObjectSendStream[str]] = {}

    @contextlib.contextmanager
    def subscribe(self, session_id: str) -> Iterator[MemoryObjectReceiveStream[str]]:
        if session_id in self._streams:
            raise StreamBusy(session_id)
        sender, receiver = anyio.create_memory_object_stream[str](BUFFER)
        self._streams[session_id] = sender
        try:
            yield receiver
        finally:
            if self._streams.get(session_id) is sender:
                del self._streams[session_id]
            sender.close()
            receiver.close()

    async def publish(self, session_id: str, message: str) -> bool:
        sender = self._streams.get(session_id)
        if sender is None:
            return False
        try:
            sender.send_nowait(message)
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


def sse_event(message: str) -> bytes:
    return b"event: message\r\ndata: " + message.encode() + b"\r\n\r\n"


async def serve_sse(
    messages: MemoryObjectReceiveStream[str],
    session_id: str,
    keepalive_seconds: float,
    receive: Receive,
    send: Send,
) -> None:
    """Answer a GET with an SSE stream of `messages` until the client leaves or the stream is closed."""
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
    async with anyio.create_task_group() as tg:

        async def until_disconnect() -> None:
            while (await receive())["type"] != "http.disconnect":
                pass
            tg.cancel_scope.cancel()

        tg.start_soon(until_disconnect)
        try:
            while True:
                with anyio.move_on_after(keepalive_seconds):
                    message = await messages.receive()
                    await send({"type": "http.response.body", "body": sse_event(message), "more_body": True})
                    continue
                await send({"type": "http.response.body", "body": b": keep-alive\r\n\r\n", "more_body": True})
        except (anyio.EndOfStream, anyio.ClosedResourceError):
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        tg.cancel_scope.cancel()
