"""The kopf handlers: importing this module registers them (`mcp-operator run` does). Each is thin.

No timers, daemons or deletion handlers: kopf would put a finalizer on every McpServer, and with the operator
uninstalled an McpServer (or its namespace) could then never be deleted. Children go by garbage collection
(owner references); drift is repaired from the children's own events (`controller/drift.py`).
"""

from __future__ import annotations

from typing import Any

import kopf

from mcp_operator.api import GROUP, PLURAL, VERSION
from mcp_operator.controller import child_events, reconcile, setup
from mcp_operator.metrics import forget
from mcp_operator.names import MANAGED_BY

CHILDREN = {"app.kubernetes.io/managed-by": MANAGED_BY}


@kopf.on.startup()
async def on_startup(settings: kopf.OperatorSettings, memo: kopf.Memo, **_: Any) -> None:
    setup.start(settings, memo)


@kopf.on.cleanup()
async def on_cleanup(memo: kopf.Memo, **_: Any) -> None:
    setup.stop(memo)


@kopf.on.resume(GROUP, VERSION, PLURAL)
@kopf.on.create(GROUP, VERSION, PLURAL)
@kopf.on.update(GROUP, VERSION, PLURAL, field="spec")
def on_change(body: kopf.Body, patch: kopf.Patch, memo: kopf.Memo, **_: Any) -> None:
    state = setup.state_of(memo)
    status = reconcile.reconcile(state, body)
    patch.status.update(status)
    state.verifier.consider(body, status)
    child_events.look_again_at_server(state, body, status)


@kopf.on.event(GROUP, VERSION, PLURAL)
def on_server_event(
    body: kopf.Body, name: str, namespace: str | None, uid: str | None, type: str | None, memo: kopf.Memo, **_: Any
) -> None:
    """Drops a deleted McpServer's metrics and the generated values kept for it; acts on a new value of the
    mcpfleet.dev/reconcile-request annotation (a reconcile and a probe now)."""
    state = setup.state_of(memo)
    if type == "DELETED" and namespace:
        forget(namespace, name)
        state.generated.pop(uid or "", None)
    elif type == "MODIFIED":
        reconcile.on_request(state, body)


# Every kind of child the operator makes is watched: one deleted is made again, one edited is put back.
@kopf.on.event("apps", "v1", "deployments", labels=CHILDREN)
@kopf.on.event("apps", "v1", "statefulsets", labels=CHILDREN)
@kopf.on.event("", "v1", "services", labels=CHILDREN)
@kopf.on.event("", "v1", "configmaps", labels=CHILDREN)
@kopf.on.event("", "v1", "secrets", labels=CHILDREN)
@kopf.on.event("policy", "v1", "poddisruptionbudgets", labels=CHILDREN)
@kopf.on.event("autoscaling", "v2", "horizontalpodautoscalers", labels=CHILDREN)
@kopf.on.event("networking.k8s.io", "v1", "networkpolicies", labels=CHILDREN)
@kopf.on.event("networking.k8s.io", "v1", "ingresses", labels=CHILDREN)
@kopf.on.event("gateway.networking.k8s.io", "v1", "httproutes", labels=CHILDREN)  # served once its CRDs are
def on_child_event(body: kopf.Body, type: str | None, memo: kopf.Memo, **_: Any) -> None:
    child_events.on_child_event(setup.state_of(memo), body, type)
