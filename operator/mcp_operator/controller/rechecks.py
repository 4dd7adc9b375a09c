"""Re-checks: an McpServer's status looked at again when it will change with no Kubernetes event to say so.

The Sentinels learn that a replica caught up some seconds after its pod became ready, and no Kubernetes event
follows; a Redis pod that cannot start (a FailedMount, an image that does not pull) says so in a Warning event
seconds after its StatefulSet last changed; a server pod in CrashLoopBackOff changes no Deployment. While
RedisReady says something that will change without an event to the operator, or Ready names a pod that
cannot start, the owner's status is looked at again `LOOK_AGAIN_SECONDS` later (at most one pending
re-check per child).

Re-checks are scheduled on kopf's event loop and run in kopf's thread pool, as the sync handlers are. They
are not a kopf timer or daemon: either makes kopf put a finalizer on every McpServer it matches, and with the
operator uninstalled such an McpServer (or its namespace) could then never be deleted. Nor a
kopf.TemporaryError: kopf retries those for change handlers only, and child events are event handlers.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from concurrent.futures import Executor
from typing import Any

from mcp_operator.status import ConditionType, Reason

LOOK_AGAIN_SECONDS = 10.0
# What the Sentinels will change, and pods on their way (one stuck in ContainerCreating gets no further pod
# event, and the operator watches no pods: the newest Warning about it shows only when looked at again).
UNSETTLED = frozenset(
    {
        Reason.REPLICAS_OUT_OF_SYNC,
        Reason.NO_PRIMARY,
        Reason.SENTINELS_UNREACHABLE,
        Reason.NOT_READY,
        Reason.PODS_NOT_READY,
        Reason.POD_CANNOT_START,
    }
)


# Exposed while its route is on its way: the Gateway API's CRDs may be installed after the McpServer, and the
# Gateway's acceptance comes with no event to the operator.
EXPOSURE_UNSETTLED = frozenset({Reason.KIND_NOT_SERVED, Reason.ROUTE_MISSING, Reason.WAITING_FOR_CONTROLLER})


def needs_reconcile(status: Mapping[str, Any]) -> bool:
    """Whether the status says a child the cluster now serves is missing (its apply failed while the kind was
    not served), so a reconcile, not only a status refresh, is due (pure)."""
    return any(
        c.get("type") == ConditionType.EXPOSED and c.get("reason") == Reason.ROUTE_MISSING
        for c in status.get("conditions", [])
    )


def needs_another_look(status: Mapping[str, Any]) -> bool:
    """Whether RedisReady says something the Sentinels will change without a Kubernetes event, or a server pod
    cannot start (it may recover, or its reason change, with no event to the operator) (pure)."""
    return any(
        (c.get("type") == ConditionType.REDIS_READY and c.get("reason") in UNSETTLED)
        or (c.get("type") == ConditionType.READY and c.get("reason") == Reason.POD_CANNOT_START)
        or (c.get("type") == ConditionType.EXPOSED and c.get("reason") in EXPOSURE_UNSETTLED)
        for c in status.get("conditions", [])
    )


class Rechecks:
    """Pending re-checks on an event loop, at most one per key; `schedule` may be called from any thread."""

    def __init__(
        self, loop: asyncio.AbstractEventLoop, executor: Executor | None = None, delay: float = LOOK_AGAIN_SECONDS
    ) -> None:
        self._loop = loop
        self._executor = executor
        self._delay = delay
        self._pending: dict[str, asyncio.TimerHandle] = {}  # only touched on the loop

    def schedule(self, key: str, look: Callable[[], None]) -> None:
        """Run `look` (blocking, in the executor) after the delay, unless a re-check for `key` is pending."""
        if not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._add, key, look)

    def cancel_all(self) -> None:
        """Drop every pending re-check (when the operator stops); call it on the loop."""
        for handle in self._pending.values():
            handle.cancel()
        self._pending.clear()

    def _add(self, key: str, look: Callable[[], None]) -> None:
        if key not in self._pending:
            self._pending[key] = self._loop.call_later(self._delay, self._run, key, look)

    def _run(self, key: str, look: Callable[[], None]) -> None:
        self._pending.pop(key, None)
        self._loop.run_in_executor(self._executor, look)
