"""Expiry: sessions that end without a DELETE, and the GET streams and live transports they leave behind.

- every `sweep_interval`: sessions with a request in flight here are kept alive (a long tool call does not
  expire its session), then the backend's expired sessions are ended everywhere;
- every `stream_check_interval`: the sessions whose GET streams this replica holds are looked up, and a
  stream whose session is gone (expired, deleted elsewhere, or its record lost from Redis) is closed.
"""

from __future__ import annotations

import gc
import logging
from collections.abc import Awaitable, Callable

import anyio
from anyio.abc import TaskStatus

from mcp_runtime.backends import BackendUnavailable, SessionBackend
from mcp_runtime.metrics import RuntimeMetrics
from mcp_runtime.sessions.live import LiveSessions
from mcp_runtime.sessions.relay import Relay
from mcp_runtime.sessions.streams import LocalStreamHub

logger = logging.getLogger(__name__)


class Expiry:
    def __init__(
        self,
        backend: SessionBackend,
        live: LiveSessions,
        hub: LocalStreamHub,
        relay: Relay,
        metrics: RuntimeMetrics,
        *,
        sweep_interval: float,
        stream_check_interval: float,
    ) -> None:
        self.backend = backend
        self.live = live
        self.hub = hub
        self.relay = relay
        self.metrics = metrics
        self.sweep_interval = sweep_interval
        self.stream_check_interval = stream_check_interval

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
        """Close the GET streams (and live transports) of sessions that no longer exist; how many."""
        held = self.hub.subscribed()
        alive = await self.backend.alive(held)
        gone = [session_id for session_id, ok in zip(held, alive, strict=True) if not ok]
        for session_id in gone:
            self.relay.drop_local(session_id)
        return len(gone)

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
