"""The SSE streams this replica holds apart from live sessions: GET streams and resumed POST streams.

The SDK holds a session's GET stream inside its transport, so a client that keeps its GET stream open (the
official client does) pins the whole transport in memory for as long as it is connected. Here a GET stream is
a light SSE response fed by this hub, and so is a POST stream that its client resumed with Last-Event-ID
(here, or on another replica than the one running the call): the live session records every message it
sends in the session's event log, which publishes it through the session events (`events.py`, in process or
over Redis) to whichever replica holds the stream.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator

import anyio
from mcp_types import INTERNAL_ERROR, ErrorData, JSONRPCError

from mcp_runtime.sessions.event_ids import GET_STREAM, entry_event_id, parse_stream
from mcp_runtime.sessions.events import Kept
from mcp_runtime.web.sse import Delivery, Inbox

logger = logging.getLogger(__name__)

BUFFER = 64
MAX_STREAMS_PER_SESSION = 32  # its GET stream and resumed POST streams, held here at once


def kept_delivery(kept: Kept, session_id: str) -> Delivery:
    """A kept message as its stream sends it (its SSE id names the session's log entry)."""
    if not kept.entry:
        return Delivery(None, kept.message, None, kept.final)
    return Delivery(entry_event_id(kept.entry, session_id), kept.message, kept.entry, kept.final)


def lost_answer(stream: str, why: str) -> Delivery:
    """The answer that ends a resumed POST stream whose call's answer can no longer come: an error for its
    request, so the client's call fails with a reason instead of waiting forever."""
    post = parse_stream(stream)
    request_id = post.request_id if post is not None else None
    message = f"The answer to this request is lost: {why}. It may or may not have run to the end."
    error = JSONRPCError(jsonrpc="2.0", id=request_id, error=ErrorData(code=INTERNAL_ERROR, message=message))
    return Delivery(None, error.model_dump_json(by_alias=True, exclude_unset=True), None, True)


class StreamBusy(Exception):
    """The session already has a GET stream here (the protocol allows one), or as many streams as it may hold."""


class LocalStreamHub:
    """The streams this process holds: by session id, then by stream token."""

    def __init__(self) -> None:
        self._streams: dict[str, dict[str, Inbox]] = {}

    @contextlib.contextmanager
    def subscribe(self, session_id: str, stream: str = GET_STREAM) -> Iterator[Inbox]:
        """Hold a stream of the session. A second GET stream is refused (StreamBusy); a POST stream resumed
        again replaces the one held (its client has given up on that connection)."""
        held = self._streams.setdefault(session_id, {})
        previous = held.get(stream)
        if previous is not None:
            if stream == GET_STREAM:
                raise StreamBusy(session_id)
            previous.close()
        elif len(held) >= MAX_STREAMS_PER_SESSION:
            raise StreamBusy(session_id)
        inbox = Inbox(BUFFER)
        held[stream] = inbox
        try:
            yield inbox
        finally:
            held = self._streams.get(session_id, {})
            if held.get(stream) is inbox:
                del held[stream]
                if not held:
                    self._streams.pop(session_id, None)
            inbox.close()

    def holds(self, session_id: str) -> bool:
        return session_id in self._streams

    def deliver(self, session_id: str, stream: str, delivery: Delivery) -> bool:
        sender = self._streams.get(session_id, {}).get(stream)
        if sender is None:
            return False
        try:
            sender.send_nowait(delivery)
        except anyio.WouldBlock:
            logger.warning("a stream of session %s is not keeping up; a message was dropped", session_id[:64])
            return False
        except (anyio.ClosedResourceError, anyio.BrokenResourceError):
            return False
        return True

    def close(self, session_id: str) -> None:
        """Close every stream of the session (it ended)."""
        for sender in self._streams.pop(session_id, {}).values():
            sender.close()

    def close_get(self, session_id: str) -> None:
        """Close the session's GET stream (the app asked: its client comes back with Last-Event-ID)."""
        sender = self._streams.get(session_id, {}).pop(GET_STREAM, None)
        if sender is not None:
            sender.close()

    def close_all(self) -> int:
        """Close every stream held (the replica drains: their clients resume elsewhere); how many."""
        closed = 0
        for session_id in list(self._streams):
            closed += len(self._streams.get(session_id, {}))
            self.close(session_id)
        return closed

    def subscribed(self) -> list[str]:
        return list(self._streams)

    def resumed(self) -> list[tuple[str, str]]:
        """The POST streams held: (session id, stream token)."""
        return [(s, token) for s, held in self._streams.items() for token in held if token != GET_STREAM]
