"""Readiness and draining: what SIGTERM changes, and when the process may exit."""

from __future__ import annotations

import anyio


class Lifecycle:
    """Tracks POST requests in flight and whether the process is draining.

    While draining, `/readyz` answers 503 (so the load balancer stops sending new work), new sessions are
    refused with 503, and requests already in flight, or for sessions already open, are still served.
    """

    def __init__(self) -> None:
        self.draining = False
        self.in_flight = 0
        self._idle = anyio.Event()
        self._idle.set()

    def request_started(self) -> None:
        self.in_flight += 1
        if self.in_flight == 1:
            self._idle = anyio.Event()

    def request_finished(self) -> None:
        self.in_flight -= 1
        if self.in_flight == 0:
            self._idle.set()

    def start_draining(self) -> None:
        self.draining = True

    async def wait_drained(self, grace_seconds: float) -> bool:
        """Wait until no POST is in flight, or the grace period ends; True if drained in time."""
        with anyio.move_on_after(grace_seconds):
            while self.in_flight:
                await self._idle.wait()
            return True
        return False
