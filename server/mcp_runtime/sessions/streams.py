"""GET streams: a session's channel for server-initiated messages, kept apart from its live transport.

The SDK holds a session's GET stream inside its transport, so a client that keeps its GET stream open (the
official client does) pins the whole transport in memory for as long as it is connected. Here the GET stream
is a light SSE response fed by this hub; a live transport forwards its standalone messages through the session
events (`events.py`, in process or over Redis) to whichever replica holds the GET stream, and can be
released when idle while the client stays connected.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator

import anyio
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from mcp_runtime.web.sse import Delivery

logger = logging.getLogger(__name__)

BUFFER = 64


class StreamBusy(Exception):
    """The session already has a GET stream here (the protocol allows one)."""


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
