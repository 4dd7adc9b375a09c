"""What a child's event asks of the McpServer that owns it: a reconcile (the child was deleted or edited: the
reconcile puts it back), a status refresh (pods became ready), or nothing."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any, Literal

from pydantic import ValidationError

from mcp_operator.api import GROUP, KIND, VERSION
from mcp_operator.controller.rechecks import needs_another_look
from mcp_operator.controller.reconcile import WORKLOADS, McpServerObject, observe_status, read_spec, reconcile
from mcp_operator.controller.setup import OperatorState

logger = logging.getLogger(__name__)

ChildAction = Literal["reconcile", "status", "ignore"]


def child_event_action(event: str, kind: str, generation: int | None, applied: int | None) -> ChildAction:
    """What a child's event asks of its owner (pure).

    A deleted child is put back (reconcile). A workload at the generation our own apply gave it is our echo or
    a status change (pods became ready): refresh the owner's status. Any other generation is someone's edit
    (or, after an operator restart, not known yet): reconcile, which puts back what the operator owns. A
    Service's other events change nothing the status shows.
    """
    if event == "DELETED":
        return "reconcile"
    if kind not in WORKLOADS:
        return "ignore"
    return "status" if generation == applied else "reconcile"


def status_changed(current: Mapping[str, Any] | None, new: Mapping[str, Any]) -> bool:
    """Whether writing `new` would change the owner's status (so an echo of our own patch writes nothing)."""
    return dict(current or {}) != dict(new)


def namespace_terminating(error: Exception) -> bool:
    """Whether the API server refused a write because the namespace is being deleted (403 NamespaceTerminating)."""
    return getattr(error, "status", None) == 403 and "NamespaceTerminating" in str(error)


def on_child_event(state: OperatorState, child: Mapping[str, Any], event: str) -> None:
    """Route one event of a child (a Deployment, StatefulSet or Service the operator made) to its owner."""
    meta = child["metadata"]
    uid = meta.get("uid", "")
    action = child_event_action(event, child["kind"], meta.get("generation"), state.applied_generations.get(uid))
    if event == "DELETED":
        state.applied_generations.pop(uid, None)
    if action == "ignore":
        return
    try:
        update_owner(state, child, reconcile_owner=action == "reconcile")
    except ValidationError:
        pass  # an invalid spec is reported by the McpServer's own handlers
    except Exception as error:
        if namespace_terminating(error):
            # The namespace is being deleted (its children were deleted with it): nothing to put back.
            logger.info(
                "namespace %s is being deleted; %s/%s not put back", meta.get("namespace"), child["kind"], meta["name"]
            )
            return
        logger.exception("could not reconcile the owner of %s/%s", child["kind"], meta["name"])


def owner_of(child: Mapping[str, Any]) -> tuple[str, str, str] | None:
    """The namespace, name and uid of the McpServer that owns `child`, if one does."""
    for ref in child["metadata"].get("ownerReferences") or []:
        if ref.get("apiVersion") == f"{GROUP}/{VERSION}" and ref.get("kind") == KIND:
            return child["metadata"]["namespace"], ref["name"], ref["uid"]
    return None


def update_owner(state: OperatorState, child: Mapping[str, Any], reconcile_owner: bool) -> None:
    """Reconcile the child's owner, or refresh its status; write the status if it changed, and schedule a
    re-check while the Sentinels have yet to settle."""
    found = owner_of(child)
    if found is None:
        return
    namespace, name, uid = found
    body = state.kube.get(f"{GROUP}/{VERSION}", KIND, name, namespace)
    if body is None or body["metadata"]["uid"] != uid or body["metadata"].get("deletionTimestamp"):
        return  # the owner is gone or going: its children go by garbage collection
    if reconcile_owner:
        status = reconcile(state, body)
    else:
        status = observe_status(state.kube, McpServerObject.of(body), read_spec(body, state.settings))
    if needs_another_look(status):
        look_again(state, child)
    if status_changed(body.get("status"), status):
        state.kube.patch_status(f"{GROUP}/{VERSION}", KIND, name, namespace, status)


def look_again(state: OperatorState, child: Mapping[str, Any]) -> None:
    """Refresh the owner's status a little later (one pending re-check per child)."""

    def look() -> None:
        try:
            update_owner(state, child, reconcile_owner=False)
        except Exception:
            logger.exception("could not refresh the status of the owner of %s", child["metadata"].get("name"))

    state.rechecks.schedule(str(child["metadata"].get("uid", "")), look)
