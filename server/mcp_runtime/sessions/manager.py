"""The MCP endpoint's router: both protocol eras, and handshake-era sessions on top of a session backend.

The SDK keeps a session as a live transport in a per-process dict. Here a session is a record in the backend
(what initialize negotiated, the owner, timestamps), written whole once initialize has succeeded; the live
session is a cache of it (`live.py`), the other replicas are told what they must know (`relay.py`), and
sessions that end without a DELETE are found by `expiry.py`.

Each handshake-era POST body is parsed once (`web/messages.py`) and routed on its JSON-RPC shape: initialize
opens a session, a request or notification is served in its own task (`exchange.py`), an answer to a
server-to-client request goes to the replica that asked.
"""

from __future__ import annotations

import contextlib
import logging
import re
import time
import uuid
from collections.abc import AsyncIterator, Callable, Coroutine, Sequence
from typing import Any

import anyio
from mcp.server.lowlevel.server import Server
from mcp.shared.jsonrpc_dispatcher import cancelled_request_id_from_params
from mcp_types import ErrorData
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from mcp_runtime.backends import BackendUnavailable, SessionBackend, SessionLimitReached, SessionRecord
from mcp_runtime.lifecycle import Lifecycle
from mcp_runtime.metrics import RuntimeMetrics
from mcp_runtime.sessions.event_ids import GET_STREAM, parse_event_id, parse_stream, priming_event_id
from mcp_runtime.sessions.event_store import Run
from mcp_runtime.sessions.events import SessionEvents
from mcp_runtime.sessions.exchange import RESUMABLE_FROM, NoticeContext, PostExchange, answer_outcome, error_data
from mcp_runtime.sessions.expiry import Expiry
from mcp_runtime.sessions.live import LiveSession, LiveSessions, SessionGone
from mcp_runtime.sessions.modern import handle_modern
from mcp_runtime.sessions.relay import Relay
from mcp_runtime.sessions.streams import LocalStreamHub, StreamBusy, kept_delivery, lost_answer
from mcp_runtime.settings import RuntimeSettings
from mcp_runtime.web.errors import error_response, service_unavailable, session_not_found
from mcp_runtime.web.guard import Principal
from mcp_runtime.web.head import RequestHead, accepts, is_json, read_head
from mcp_runtime.web.messages import BadMessage, Incoming, parse
from mcp_runtime.web.sends import before_last_chunk, duplicate_request
from mcp_runtime.web.sse import Delivery, serve_sse

logger = logging.getLogger(__name__)

# What a session id may be at all (the SDK transport refuses other characters).
_SESSION_ID = re.compile(r"[\x21-\x7e]{1,256}")


class SessionManager:
    """Serves the MCP endpoint for one MCP server: handshake-era sessions and modern-era requests."""

    def __init__(
        self,
        server: Server[Any],
        settings: RuntimeSettings,
        *,
        backend: SessionBackend,
        metrics: RuntimeMetrics,
        lifecycle: Lifecycle,
        events: SessionEvents,
        hub: LocalStreamHub,
        live: LiveSessions,
        relay: Relay,
        expiry: Expiry,
        services: Sequence[Callable[..., Coroutine[Any, Any, None]]] = (),
    ) -> None:
        self.server = server
        self.backend = backend
        self.metrics = metrics
        self.lifecycle = lifecycle
        self.json_response = settings.json_response
        self.retry_after = settings.retry_after_seconds
        self.stream_keepalive_seconds = settings.stream_keepalive_seconds
        self.retry_ms = settings.sse_retry_ms
        self.json_window = settings.json_window_seconds
        # Renewed well within the session's TTL however short it is (a quarter of it at most).
        self.touch_interval = min(settings.touch_interval_seconds, settings.session_ttl_seconds / 4)
        self.retention_seconds = settings.event_retention_seconds
        self.stream_check_seconds = settings.stream_check_seconds
        # Streams move to another replica on a drain only where every replica knows every session.
        self.streams_move = settings.session_backend == "redis"
        self.events = events
        self.hub = hub
        self.live = live
        self.relay = relay
        self.expiry = expiry
        self.services = list(services)  # background tasks of the runtime, run while the manager runs
        self._lifespan_state: Any = None

    @contextlib.asynccontextmanager
    async def run(self) -> AsyncIterator[None]:
        async with self.server.lifespan(self.server) as lifespan_state, anyio.create_task_group() as tg:
            self._lifespan_state = lifespan_state
            self.live.bind(tg, lifespan_state)
            await tg.start(self.relay.run)
            for service in self.services:
                await tg.start(service)
            await tg.start(self.expiry.run)
            try:
                yield
            finally:
                tg.cancel_scope.cancel()
                self.live.bind(None)

    @property
    def live_count(self) -> int:
        return len(self.live)

    async def sweep(self) -> int:
        return await self.expiry.sweep()

    # Routing

    async def handle(
        self, head: RequestHead, scope: Scope, receive: Receive, send: Send, body: bytes, principal: Principal
    ) -> None:
        """Serve one request to the MCP endpoint (headers already checked, body already read whole)."""
        if head.modern:
            await handle_modern(self.server, self.json_response, self._lifespan_state, head, body, scope, receive, send)
            return
        session_id = head.session_id
        if session_id is not None and not _SESSION_ID.fullmatch(session_id):
            await session_not_found()(scope, receive, send)  # no session was ever given such an id
            return
        if head.method == "POST":
            try:
                incoming = parse(body)
            except BadMessage as bad:
                await error_response(400, bad.message, code=bad.code)(scope, receive, send)
                return
            if session_id is None:
                await self._open_session(incoming, scope, receive, send, principal)
            elif incoming.is_answer:
                await self._answer(session_id, incoming, scope, receive, send, principal)
            else:
                await self._serve_session(session_id, incoming, scope, receive, send, principal)
        elif session_id is None:
            await error_response(400, "Bad Request: Missing session ID")(scope, receive, send)
        elif head.method == "DELETE":
            await self._delete_session(session_id, scope, receive, send, principal)
        else:
            await self._serve_get_stream(session_id, head, scope, receive, send, principal)

    # Opening a session

    async def _open_session(
        self, incoming: Incoming, scope: Scope, receive: Receive, send: Send, who: Principal
    ) -> None:
        if not (incoming.is_request and incoming.method == "initialize"):
            await error_response(400, "Bad Request: Missing session ID")(scope, receive, send)
            return
        if self.lifecycle.draining:
            self.metrics.rejected("draining")
            await service_unavailable("Server is shutting down; open the session on another replica", self.retry_after)(
                scope, receive, send
            )
            return
        refusal = self._refuse_post(scope)
        if refusal is not None:
            await refusal(scope, receive, send)
            return
        session_id = uuid.uuid4().hex
        live = await self.live.open(session_id, who.owner)
        established = False
        try:
            assert incoming.id is not None
            exchange = self._exchange(live, incoming, scope, receive, send, run=None)
            try:
                outcome: dict[str, Any] | ErrorData = await live.runner.on_request(
                    exchange, "initialize", incoming.params
                )
            except Exception as error:
                outcome = error_data(error, "initialize")
            if not isinstance(outcome, ErrorData):  # initialize itself failed: its error goes out, nothing is stored
                refused = await self._admit(live, who)
                if refused is not None:
                    await refused(scope, receive, send)
                    return
                established = True
            # Stored whole before the initialize result reaches the client.
            await exchange.answer(outcome)
        finally:
            if not established:
                self.live.retire(session_id)
            self.live.release(live)
        self.metrics.sessions_created.inc()
        with contextlib.suppress(BackendUnavailable):
            self.metrics.sessions_active.set(await self.backend.count())
        logger.info("session opened", extra={"session": session_id})

    async def _admit(self, live: LiveSession, who: Principal) -> Response | None:
        """Store the new session whole; or the refusal to answer with."""
        connection = live.connection
        assert connection is not None and connection.client_params is not None
        now = time.monotonic()
        record = SessionRecord(
            live.session_id,
            who.client_key,
            who.owner,
            now,
            now,
            protocol_version=connection.protocol_version,
            client_params=connection.client_params.model_dump_json(by_alias=True, exclude_none=True),
        )
        try:
            await self.backend.admit(record)
        except SessionLimitReached as refused:
            self.metrics.rejected(f"{refused.scope}_limit")
            logger.warning("refused a new session: %s", refused)
            return service_unavailable(str(refused), self.retry_after)
        except BackendUnavailable as error:
            self.metrics.rejected("backend_unavailable")
            with contextlib.suppress(Exception):
                await self.backend.delete(live.session_id)  # in case the admission was applied after all
            return service_unavailable(f"Session store unavailable: {error}", self.retry_after)
        except Exception as error:  # never a cut connection: the client can retry
            logger.exception("could not store a new session")
            self.metrics.rejected("backend_error")
            return service_unavailable(f"Session store failed: {type(error).__name__}", self.retry_after)
        return None

    def _refuse_post(self, scope: Scope) -> Response | None:
        """The SDK transport's checks of a POST's head: what it must accept, and a JSON body."""
        head = read_head(scope)
        json_ok, sse_ok = accepts(head)
        if self.json_response:
            if not json_ok:
                return error_response(406, "Not Acceptable: Client must accept application/json")
        elif not (json_ok and sse_ok):
            return error_response(406, "Not Acceptable: Client must accept both application/json and text/event-stream")
        if not is_json(head):
            return error_response(415, "Unsupported Media Type: Content-Type must be application/json")
        return None

    def _exchange(
        self, live: LiveSession, incoming: Incoming, scope: Scope, receive: Receive, send: Send, run: Run | None
    ) -> PostExchange:
        assert incoming.id is not None and incoming.method is not None
        protocol = live.connection.protocol_version if live.connection is not None else ""
        return PostExchange(
            live,
            incoming.id,
            incoming.method,
            incoming.params,
            Request(scope, receive),
            send,
            receive=receive,
            run=run,
            resumable=protocol >= RESUMABLE_FROM,
            retry_ms=self.retry_ms,
            json_window=self.json_window,
        )

    # Serving a session

    async def _serve_session(
        self, session_id: str, incoming: Incoming, scope: Scope, receive: Receive, send: Send, who: Principal
    ) -> None:
        refusal = self._refuse_post(scope)
        if refusal is not None:
            await refusal(scope, receive, send)
            return
        built = False

        async def load() -> SessionRecord | None:
            nonlocal built
            built = True
            return await self.backend.get(session_id)

        try:
            live = await self.live.acquire(session_id, load)
        except SessionGone:
            await session_not_found()(scope, receive, send)
            return
        try:
            if live.owner != who.owner:
                await session_not_found()(scope, receive, send)
                return
            now, epoch = time.monotonic(), self.events.epoch
            if built:
                self.metrics.sessions_restored.inc()
                live.touched_at, live.touch_epoch = now, epoch  # (just read from the store)
            elif epoch is None or epoch != live.touch_epoch or now - live.touched_at >= self.touch_interval:
                # Checked in the store: it is time, or this replica may have missed the session's end (it does not
                # hear session events now, or did not for a while).
                if not await self.backend.touch(session_id):  # expired or deleted underneath us
                    self.relay.drop_local(session_id)
                    await session_not_found()(scope, receive, send)
                    return
                live.touched_at, live.touch_epoch = now, epoch
            if incoming.is_request:
                await self._serve_request(live, incoming, scope, receive, send)
            else:
                await self._serve_notification(live, incoming, scope, receive, send)
        finally:
            self.live.release(live)

    async def _serve_request(
        self, live: LiveSession, incoming: Incoming, scope: Scope, receive: Receive, send: Send
    ) -> None:
        key = incoming.request_key
        assert key is not None and incoming.id is not None
        if key in live.request_keys:
            await duplicate_request(incoming)(scope, receive, send)
            return
        live.request_keys.add(key)
        # The id is free again the moment its answer is complete: just before the answer's last bytes go out,
        # not when the handler returns (the client may send its next request in between).
        answer = before_last_chunk(send, lambda: live.request_keys.discard(key))
        store = live.store if live.store.post_streams else None
        run = store.expect(key, incoming.id) if store is not None else None
        try:
            await self._exchange(live, incoming, scope, receive, answer, run).serve()
        finally:
            live.request_keys.discard(key)

    async def _serve_notification(
        self, live: LiveSession, incoming: Incoming, scope: Scope, receive: Receive, send: Send
    ) -> None:
        """Accepted (202) at once, as the SDK transport does; then handled."""
        await Response(status_code=202, headers={"mcp-session-id": live.session_id})(scope, receive, send)
        if incoming.method == "notifications/cancelled":
            cancelled = cancelled_request_id_from_params(incoming.params)
            exchange = live.exchanges.get(str(cancelled)) if cancelled is not None else None
            if exchange is not None:
                exchange.cancel()
        assert incoming.method is not None
        notice = NoticeContext(live, Request(scope, receive))
        await live.runner.on_notify(notice, incoming.method, incoming.params)

    async def _answer(
        self, session_id: str, incoming: Incoming, scope: Scope, receive: Receive, send: Send, who: Principal
    ) -> None:
        """The client's answer to a server-to-client request: to the live session whose tool asked."""
        answer_id = incoming.id
        message = incoming.answer
        assert message is not None
        live = self.live.get(session_id) if self.live.asked_here(answer_id) else None
        if live is not None and live.owner == who.owner and live.answered(answer_id, answer_outcome(message)):
            await Response(status_code=202)(scope, receive, send)
            return
        record = await self.backend.get(session_id)
        if record is None or record.owner != who.owner or record.protocol_version is None:
            await session_not_found()(scope, receive, send)
            return
        await self.relay.forward_answer(session_id, message)
        await Response(status_code=202)(scope, receive, send)

    async def _delete_session(
        self, session_id: str, scope: Scope, receive: Receive, send: Send, who: Principal
    ) -> None:
        record = await self.backend.get(session_id)
        if record is None or record.owner != who.owner:
            await session_not_found()(scope, receive, send)
            return
        # Gone from the store before the answer goes out, so no replica can bring the session back; calls in
        # flight finish (their transport ends when they are done).
        await self.backend.delete(session_id)
        await self.relay.end(session_id)
        self.metrics.sessions_deleted.inc()
        with contextlib.suppress(BackendUnavailable):
            self.metrics.sessions_active.set(await self.backend.count())
        logger.info("session deleted", extra={"session": session_id})
        await Response(status_code=200)(scope, receive, send)

    # GET streams

    async def _serve_get_stream(
        self, session_id: str, head: RequestHead, scope: Scope, receive: Receive, send: Send, who: Principal
    ) -> None:
        accept = (head.accept or "").lower()
        if "text/event-stream" not in accept and "text/*" not in accept and "*/*" not in accept:
            await error_response(406, "Not Acceptable: Client must accept text/event-stream")(scope, receive, send)
            return
        cursor = None
        if head.last_event_id is not None:
            cursor = parse_event_id(head.last_event_id)
            if cursor is None:
                await error_response(400, f"Bad Request: malformed Last-Event-ID {head.last_event_id[:64]!r}")(
                    scope, receive, send
                )
                return
        record = await self.backend.get(session_id)
        if record is None or record.owner != who.owner or record.protocol_version is None:
            await session_not_found()(scope, receive, send)
            return
        if cursor is not None and not cursor.of_session(session_id):
            await error_response(404, "Not Found: the Last-Event-ID is of another session")(scope, receive, send)
            return
        stream, after = GET_STREAM, None
        if cursor is not None:
            if cursor.kind == "priming":
                stream = cursor.token
            else:
                found = await self.events.find(session_id, cursor.entry)
                if found is None:
                    # Past the log's bounds (or never kept): the client gets a fresh GET stream, nothing replayed.
                    logger.info("session %s: Last-Event-ID past the kept events; the stream restarts", session_id[:64])
                    self.metrics.streams_resumed.labels(outcome="restarted").inc()
                    cursor = None
                elif found.final:  # the client has its POST stream's answer: nothing follows it
                    await _ended_stream(session_id)(scope, receive, send)
                    return
                else:
                    stream, after = found.stream, cursor.entry
        if stream == GET_STREAM and self.lifecycle.draining and self.streams_move:
            # A GET stream lasts: it goes to another replica. (A resumed POST stream is served: it ends with its
            # call's answer, which this replica may well be about to give.)
            self.metrics.rejected("draining")
            await service_unavailable("Server is shutting down; open the stream on another replica", self.retry_after)(
                scope, receive, send
            )
            return
        if stream != GET_STREAM and parse_stream(stream) is None:
            await error_response(404, "Not Found: no such stream in this session")(scope, receive, send)
            return
        primed_at = cursor.millis if cursor is not None and cursor.kind == "priming" else None
        await self._stream(session_id, stream, after, cursor is not None, scope, receive, send, primed_at)

    async def _stream(
        self,
        session_id: str,
        stream: str,
        after: str | None,
        resumed: bool,
        scope: Scope,
        receive: Receive,
        send: Send,
        primed_at: int | None = None,
    ) -> None:
        """Serve one of the session's streams from the hub: what the log holds after `after` (when `resumed`),
        then what is recorded live; a POST stream ends with its answer."""
        post = stream != GET_STREAM
        if post:  # a resumed POST stream ends with its call's answer: a draining replica waits for it
            self.lifecycle.request_started()
        try:
            try:
                subscription = self.hub.subscribe(session_id, stream)
                messages = subscription.__enter__()
            except StreamBusy:
                message = (
                    "Conflict: too many open streams in this session"
                    if post
                    else "Conflict: Only one SSE stream is allowed per session"
                )
                await error_response(409, message)(scope, receive, send)
                return
            try:
                await self.events.watch(session_id, messages=True)
                try:
                    # Watch first, then read the log: nothing recorded in between is lost (duplicates are skipped).
                    kept = await self.events.replay(session_id, stream, after) if resumed else []
                    replayed = [kept_delivery(k, session_id) for k in kept]
                    if post and not any(k.final for k in kept):
                        await self._ask_for_answer(session_id, stream)
                    if post and not kept and primed_at is not None and self._past_retention(primed_at):
                        # Resumed from its priming event after the log's retention: whatever it sent is gone.
                        replayed = [lost_answer(stream, "its events are past the retention of the event log")]
                    if resumed:
                        self.metrics.streams_resumed.labels(outcome="post" if post else "get").inc()
                    priming = None
                    if post:  # a fresh cursor, so that the client can resume this stream again
                        priming = priming_event_id(stream, int(time.time() * 1000), session_id)

                    async def catch_up(last_sent: str | None) -> list[Delivery]:
                        """What the log holds of this POST stream that live delivery missed (pub/sub is lossy)."""
                        try:
                            kept = await self.events.replay(session_id, stream, last_sent or after)
                        except BackendUnavailable:
                            return []
                        if not any(k.final for k in kept):  # asked again: pub/sub may have lost the question
                            await self._ask_for_answer(session_id, stream)
                        return [kept_delivery(k, session_id) for k in kept]

                    await serve_sse(
                        messages,
                        session_id,
                        self.stream_keepalive_seconds,
                        receive,
                        send,
                        replayed,
                        priming=priming,
                        retry_ms=self.retry_ms,
                        until_answer=post,
                        catch_up=catch_up if post else None,
                        catch_up_seconds=self.stream_check_seconds,
                    )
                finally:
                    with anyio.CancelScope(shield=True):
                        await self.events.unwatch(session_id, messages=True)
            finally:
                subscription.__exit__(None, None, None)
        finally:
            if post:
                self.lifecycle.request_finished()

    async def _ask_for_answer(self, session_id: str, stream: str) -> None:
        try:
            await self.relay.ask_for_answer(session_id, stream)
        except BackendUnavailable as error:  # asked again at the stream's next check
            logger.info("session %s: the runner of a resumed stream was not asked yet: %s", session_id[:64], error)

    def _past_retention(self, primed_at: int) -> bool:
        return time.time() * 1000 - primed_at > self.retention_seconds * 1000

    # Draining

    def drain_streams(self) -> int:
        """The replica drains: close every resumable stream (POST streams whose calls go on here, GET streams,
        resumed streams), each after a `retry:` hint, so their clients resume on another replica; how many.
        (Not on the memory backend: no other replica knows the session, so its streams stay until the end.)"""
        if not self.streams_move:
            return 0
        closed = 0
        for live in self.live.sessions():
            closed += live.store.detach_all()
        return closed + self.hub.close_all()

    async def keep_held_answers(self) -> int:
        """The replica drains: the answers it held go to the event log, where another replica finds them."""
        return await self.relay.keep_held_answers()


def _ended_stream(session_id: str) -> Response:
    """A stream resumed after its last event: an SSE response with nothing in it."""
    return Response(
        b"", media_type="text/event-stream", headers={"Cache-Control": "no-cache", "mcp-session-id": session_id}
    )
