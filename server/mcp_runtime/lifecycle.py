"""Readiness and draining: what SIGTERM changes, and when the process may exit."""

from __future__ import annotations

import anyio

QUIET_SECONDS = 0.5


class Lifecycle:
    """Tracks POST requests in flight and whether the process is draining.

    While draining, `/readyz` answers 503 (so the load balancer stops sending new work), new sessions are
    refused with 503, and requests already in flight, or for sessions already open, are still served.
    """

    def __init__(self) -> None:
        self.draining = False
        self.in_flight = 0
        self.started = 0  # POSTs ever started (so a quiet period can tell one that came and went)
        self._idle = anyio.Event()
        self._idle.set()

    def request_started(self) -> None:
        self.started += 1
        self.in_flight += 1
        if self.in_flight == 1:
            self._idle = anyio.Event()

    def request_finished(self) -> None:
        self.in_flight -= 1
        if self.in_flight == 0:
            self._idle.set()

    def start_draining(self) -> None:
        self.draining = True

    async def wait_drained(self, grace_seconds: float, quiet_seconds: float = QUIET_SECONDS) -> bool:
        """Wait until no POST has been in flight for `quiet_seconds`, or the grace period ends; True if drained.

        The quiet period is for what follows an answer at once: a client that gets a tool's result often sends
        its next request of the same work within milliseconds (the SDK's client lists the tools after a call),
        and an exit at the first idle instant would cut that one off.
        """
        with anyio.move_on_after(grace_seconds):
            while True:
                while self.in_flight:
                    await self._idle.wait()
                started = self.started
                await anyio.sleep(quiet_seconds)
                if self.started == started:
                    return True
        return False
