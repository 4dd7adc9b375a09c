"""Expiry: sessions that end without a DELETE, and the GET streams and live sessions they leave behind.

- every `sweep_interval`: sessions with a request in flight here are kept alive (a long tool call does not
  expire its session), then the backend's expired sessions are ended everywhere;
- every `stream_check_interval`: the sessions whose streams this replica holds are looked up, and a stream
  whose session is gone (expired, deleted elsewhere, or its record lost from Redis) is closed; a resumed POST
  stream whose call ran on a replica that is gone (killed: its heartbeat stopped) gets an error for its
  request, so the client's call fails instead of waiting forever.
"""

from __future__ import annotations

import gc
import logging
from collections.abc import Awaitable, Callable

import anyio
from anyio.abc import TaskStatus

from mcp_runtime.backends import BackendUnavailable, SessionBackend
from mcp_runtime.metrics import RuntimeMetrics
from mcp_runtime.sessions.event_ids import parse_stream
from mcp_runtime.sessions.events import SessionEvents
from mcp_runtime.sessions.live import LiveSessions
from mcp_runtime.sessions.relay import Relay
from mcp_runtime.sessions.streams import LocalStreamHub, lost_answer

logger = logging.getLogger(__name__)


class Expiry:
    def __init__(
        self,
        backend: SessionBackend,
        live: LiveSessions,
        hub: LocalStreamHub,
        relay: Relay,
        metrics: RuntimeMetrics,
        events: SessionEvents,
        *,
        sweep_interval: float,
        stream_check_interval: float,
        replica: str,
    ) -> None:
        self.backend = backend
        self.live = live
        self.hub = hub
        self.relay = relay
        self.metrics = metrics
        self.sweep_interval = sweep_interval
        self.stream_check_interval = stream_check_interval
        self.events = events
        self.replica = replica
        self._runners_missing: set[str] = set()

    async def sweep(self) -> int:
        for live in self.live.sessions():
            if live.in_flight:
                await self.backend.touch(live.session_id)
        expired = await self.backend.sweep()
        for session_id in expired:
            await self.relay.end(session_id)
        if expired:  # counted by the backend as it removes them (mcp_runtime_sessions_expired_total)
            logger.info("expired %d idle sessions", len(expired))
        self.metrics.sessions_active.set(await self.backend.count())
        if self.live.released_since_collect:
            # A released transport is a cycle of tasks, scopes and streams: only the cyclic collector frees
            # it, and with a raised MCP_GC_THRESHOLD it would wait long. Collect once a sweep, when needed.
            self.live.released_since_collect = 0
            gc.collect()
        return len(expired)

    async def check_streams(self) -> int:
        """Close the GET streams (and live sessions) of sessions that no longer exist; how many."""
        held = self.hub.subscribed()
        alive = await self.backend.alive(held)
        gone = [session_id for session_id, ok in zip(held, alive, strict=True) if not ok]
        for session_id in gone:
            self.relay.drop_local(session_id)
        return len(gone) + await self.check_runners()

    async def check_runners(self) -> int:
        """End the resumed POST streams whose call's replica is gone (missing at two checks in a row); how many."""
        runners = {post.runner for _, token in self.hub.resumed() if (post := parse_stream(token)) is not None}
        runners.discard(self.replica)
        missing = {runner for runner in runners if not await self.events.runner_alive(runner)}
        lost, self._runners_missing = missing & self._runners_missing, missing
        ended = 0
        for session_id, token in self.hub.resumed():
            post = parse_stream(token)
            if post is not None and post.runner in lost:
                why = f"the replica running it ({post.runner}) is gone, and its answer was not kept"
                if self.hub.deliver(session_id, token, lost_answer(token, why)):
                    self.metrics.streams_resumed.labels(outcome="runner_lost").inc()
                    ended += 1
        return ended

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        async with anyio.create_task_group() as tg:
            tg.start_soon(self._every, self.sweep_interval, self.sweep, "sweep")
            tg.start_soon(self._every, self.stream_check_interval, self.check_streams, "stream check")
            task_status.started()

    @staticmethod
    async def _every(interval: float, job: Callable[[], Awaitable[int]], name: str) -> None:
        while True:
            await anyio.sleep(interval)
            try:
                await job()
            except BackendUnavailable as error:
                logger.warning("%s skipped: %s", name, error)
            except Exception:
                logger.exception("%s failed", name)
