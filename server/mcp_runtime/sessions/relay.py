"""The cross-replica relay: what one replica must tell the others about a session.

- a server message for the session's GET stream, produced where the live transport is, delivered where the
  GET stream is (and kept for Last-Event-ID);
- the client's answer to a server-to-client request, POSTed to a replica other than the one whose tool is
  waiting for it;
- the end of the session (DELETE, expiry): every replica retires its live transport and closes its GET stream.

The transport of these events is a `SessionEvents` (`events.py`: in process, or Redis pub/sub).
"""

from __future__ import annotations

import logging
from typing import Any

import anyio
import pydantic
from mcp_types import JSONRPCMessage, jsonrpc_message_adapter

from mcp_runtime.backends import BackendUnavailable
from mcp_runtime.metrics import RuntimeMetrics
from mcp_runtime.sdk.surface import deliver
from mcp_runtime.sessions.events import SessionEvents
from mcp_runtime.sessions.live import LiveSessions, StandaloneSink
from mcp_runtime.sessions.streams import LocalStreamHub

logger = logging.getLogger(__name__)

ANSWER_DELIVERY_SECONDS = 10.0


def standalone_sink(events: SessionEvents) -> StandaloneSink:
    """Where a live transport sends a server message it sends outside any request: to the session's GET
    stream, wherever it is (kept for Last-Event-ID, then published)."""

    async def standalone(session_id: str, payload: str) -> None:
        try:
            event_id = await events.append(session_id, payload)
            await events.send(session_id, {"t": "message", "id": event_id, "m": payload})
        except BackendUnavailable as error:
            logger.warning("session %s: a server message was lost: %s", session_id[:64], error)

    return standalone


class Relay:
    def __init__(self, events: SessionEvents, hub: LocalStreamHub, live: LiveSessions, metrics: RuntimeMetrics) -> None:
        self.events = events
        self.hub = hub
        self.live = live
        self.metrics = metrics

    async def run(self, *, task_status: anyio.abc.TaskStatus[None]) -> None:
        await self.events.run(self._on_event, task_status=task_status)

    async def forward_answer(self, session_id: str, message: JSONRPCMessage) -> None:
        """The client's answer to a request another replica asked: publish it to that replica."""
        payload = message.model_dump_json(by_alias=True, exclude_unset=True)
        await self.events.send(session_id, {"t": "answer", "m": payload})
        self.metrics.answers_forwarded.inc()

    def drop_local(self, session_id: str) -> None:
        self.live.retire(session_id)
        self.hub.close(session_id)

    async def end(self, session_id: str) -> None:
        """The session ended here: drop what this replica holds of it, and tell the others."""
        self.drop_local(session_id)
        try:
            await self.events.send(session_id, {"t": "ended"})
        except BackendUnavailable as error:
            # The other replicas still find the record gone on the session's next request or stream check.
            logger.warning("session %s: end not announced: %s", session_id[:64], error)

    async def _on_event(self, session_id: str, event: dict[str, Any]) -> None:
        kind = event.get("t")
        if kind == "message":
            self.hub.deliver(session_id, event.get("id"), str(event.get("m")))
        elif kind == "answer":
            await self._deliver_answer(session_id, event.get("m"))
        elif kind == "ended":
            self.drop_local(session_id)

    async def _deliver_answer(self, session_id: str, payload: object) -> None:
        try:
            message = jsonrpc_message_adapter.validate_json(payload if isinstance(payload, str | bytes) else "")
        except pydantic.ValidationError:
            logger.warning("session %s: ignored a malformed forwarded answer", session_id[:64])
            return
        live = self.live.get(session_id)
        if live is None or not live.asked_here(getattr(message, "id", None)):
            return  # not asked by this replica's live transport, or nothing waits for it any more
        with anyio.move_on_after(ANSWER_DELIVERY_SECONDS):
            await deliver(live.transport, message)
