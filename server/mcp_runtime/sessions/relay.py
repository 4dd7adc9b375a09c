"""The cross-replica relay: what one replica must tell the others about a session.

- a server message of one of the session's SSE streams, produced where the live session is (and kept in the
  session's event log for Last-Event-ID), delivered where the GET stream or a resumed POST stream is;
- the client's answer to a server-to-client request, POSTed to a replica other than the one whose tool is
  waiting for it;
- the end of the session (DELETE, expiry): every replica retires its live session and closes its GET stream;
- a client resumed a POST stream: the replica serving it asks the call's runner to write the call's answer to
  the event log (an answer delivered on its open stream is only held in the runner's memory, `held_answers.py`).

The transport of these events is a `SessionEvents` (`events.py`: in process, or Redis pub/sub).
"""

from __future__ import annotations

import logging
from typing import Any

import anyio
import pydantic
from mcp_types import JSONRPCError, JSONRPCMessage, JSONRPCResponse, jsonrpc_message_adapter

from mcp_runtime.backends import BackendUnavailable
from mcp_runtime.metrics import RuntimeMetrics
from mcp_runtime.sessions.event_ids import GET_STREAM, parse_stream
from mcp_runtime.sessions.events import SessionEvents, kept_from_event
from mcp_runtime.sessions.exchange import answer_outcome
from mcp_runtime.sessions.held_answers import HeldAnswers
from mcp_runtime.sessions.live import LiveSessions
from mcp_runtime.sessions.streams import LocalStreamHub, kept_delivery, lost_answer
from mcp_runtime.web.sse import Delivery

logger = logging.getLogger(__name__)


class Relay:
    def __init__(
        self,
        events: SessionEvents,
        hub: LocalStreamHub,
        live: LiveSessions,
        metrics: RuntimeMetrics,
        *,
        replica: str,
        held: HeldAnswers | None = None,
    ) -> None:
        self.events = events
        self.hub = hub
        self.live = live
        self.metrics = metrics
        self.replica = replica
        self.held = held

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
        if self.held is not None:
            self.held.forget(session_id)

    async def ask_for_answer(self, session_id: str, token: str) -> None:
        """A client resumed the POST stream `token` here: have its runner write the call's answer to the log
        (where this replica's resumed stream hears it), now or when it comes."""
        post = parse_stream(token)
        if post is None:
            return
        if post.runner == self.replica:
            await self.keep_answer(session_id, token)
        else:
            await self.events.ask_runner(post.runner, session_id, token)

    async def keep_answer(self, session_id: str, token: str) -> None:
        """Write the answer this replica holds of a stream to the log; or, while its call runs here, have it
        written when it comes."""
        answer = self.held.take(session_id, token) if self.held is not None else None
        if answer is not None:
            try:
                await self.events.record(session_id, token, answer, True)
            except BackendUnavailable:
                if self.held is not None:
                    self.held.hold(session_id, token, answer)  # asked again at the resumed stream's next check
                raise
            self.metrics.held_answers_kept.inc()
            return
        live = self.live.get(session_id)
        if live is not None and live.store is not None and live.store.keep_answer(token):
            return
        if self.held is None or (session_id, token) in self.held.writing:
            return  # (memory: every answer is in the log already; or a retry is writing this one)
        # Neither held, nor running, nor being written here: its answer went out and was dropped from memory
        # since (the held answers' bound), or this process restarted under the same name. The stream ends with
        # an error rather than waiting for an answer that cannot come. (Should the answer have been written in
        # the meantime, it is in the log before this error, and the resumed stream ends with the answer.)
        lost = lost_answer(token, "the replica that ran it no longer holds it")
        await self.events.record(session_id, token, lost.message, True)

    async def keep_held_answers(self) -> int:
        """The replica drains: hold no more answers, and write every held one to the log; how many."""
        if self.held is None:
            return 0
        self.held.holding = False
        kept = 0
        for session_id, token, answer in self.held.take_all():
            try:
                await self.events.record(session_id, token, answer, True)
            except BackendUnavailable as error:
                logger.warning("session %s: a held answer was not kept: %s", session_id[:64], error)
                continue
            kept += 1
        self.metrics.held_answers_kept.inc(kept)
        return kept

    async def end(self, session_id: str) -> None:
        """The session ended here: drop what this replica holds of it, and tell the others."""
        self.drop_local(session_id)
        try:
            await self.events.forget(session_id)
            await self.events.send(session_id, {"t": "ended"})
        except BackendUnavailable as error:
            # The other replicas still find the record gone on the session's next request or stream check.
            logger.warning("session %s: end not announced: %s", session_id[:64], error)

    async def _on_event(self, session_id: str, event: dict[str, Any]) -> None:
        kind = event.get("t")
        if kind == "message":
            if "e" not in event:  # from a replica before event tags: a GET-stream message
                event_id = event.get("id")
                self.hub.deliver(session_id, GET_STREAM, Delivery(event_id, str(event.get("m")), event_id))
                return
            kept = kept_from_event(event)
            self.hub.deliver(session_id, kept.stream, kept_delivery(kept, session_id))
        elif kind == "answer":
            await self._deliver_answer(session_id, event.get("m"))
        elif kind == "ended":
            self.drop_local(session_id)
        elif kind == "keep":
            try:
                await self.keep_answer(session_id, str(event.get("s") or ""))
            except BackendUnavailable as error:
                logger.warning("session %s: a held answer was not kept yet: %s", session_id[:64], error)

    async def _deliver_answer(self, session_id: str, payload: object) -> None:
        try:
            message = jsonrpc_message_adapter.validate_json(payload if isinstance(payload, str | bytes) else "")
        except pydantic.ValidationError:
            logger.warning("session %s: ignored a malformed forwarded answer", session_id[:64])
            return
        if not isinstance(message, JSONRPCResponse | JSONRPCError):
            return
        live = self.live.get(session_id)
        if live is not None and live.asked_here(message.id):
            live.answered(message.id, answer_outcome(message))  # (else nothing waits for it any more)
