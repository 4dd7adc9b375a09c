"""What a child's event asks of the McpServer that owns it: a reconcile (the child was deleted or edited: the
reconcile puts it back, and an Event says so), a status refresh (pods became ready), or nothing."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any, cast

import kopf
from pydantic import ValidationError

from mcp_operator.api import GROUP, KIND, VERSION
from mcp_operator.controller.drift import ChildId, child_event_action, fingerprint, repair_message
from mcp_operator.controller.rechecks import needs_another_look, needs_reconcile
from mcp_operator.controller.reconcile import McpServerObject, observe_status, read_spec, reconcile
from mcp_operator.controller.setup import OperatorState
from mcp_operator.status import Reason

logger = logging.getLogger(__name__)


def status_changed(current: Mapping[str, Any] | None, new: Mapping[str, Any]) -> bool:
    """Whether merging `new` into the owner's status would change it (so an echo of our own patch writes
    nothing; fields only the verifier writes, such as `verified`, are not in `new`)."""
    current = current or {}
    return any(current.get(key) != value for key, value in new.items())


def namespace_terminating(error: Exception) -> bool:
    """Whether the API server refused a write because the namespace is being deleted (403 NamespaceTerminating)."""
    return getattr(error, "status", None) == 403 and "NamespaceTerminating" in str(error)


def on_child_event(state: OperatorState, child: Mapping[str, Any], event: str | None) -> None:
    """Route one event of a child the operator made to its owner (`drift.child_event_action`)."""
    meta = child["metadata"]
    uid = str(meta.get("uid", ""))
    seen = fingerprint(child)
    action = child_event_action(event, child["kind"], seen, state.applied.get(uid))
    if event == "DELETED":
        state.forget(dict(child))
    if action == "ignore":
        return
    try:
        update_owner(state, child, reconcile_owner=action == "reconcile", event=event)
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


def update_owner(
    state: OperatorState, child: Mapping[str, Any], reconcile_owner: bool, event: str | None = None
) -> None:
    """Reconcile the child's owner (and say in an Event what that repaired), or refresh its status; write the
    status if it changed, and schedule a re-check while the Sentinels have yet to settle."""
    found = owner_of(child)
    if found is None:
        return
    namespace, name, uid = found
    body = state.kube.get(f"{GROUP}/{VERSION}", KIND, name, namespace)
    if body is None or body["metadata"]["uid"] != uid or body["metadata"].get("deletionTimestamp"):
        return  # the owner is gone or going: its children go by garbage collection
    if reconcile_owner:
        try:
            status = reconcile(state, body)
        finally:
            tell_repair(state, body, child, event)
    else:
        status = observe_status(state.kube, McpServerObject.of(body), read_spec(body, state.settings))
        if needs_reconcile(status):
            status = reconcile(state, body)
    if needs_another_look(status):
        look_again(state, child)
    state.verifier.consider(body, status)
    if status_changed(body.get("status"), status):
        state.kube.patch_status(f"{GROUP}/{VERSION}", KIND, name, namespace, status)


def tell_repair(state: OperatorState, owner: Mapping[str, Any], child: Mapping[str, Any], event: str | None) -> None:
    """A Normal Event on the owner when the reconcile a child's event prompted put that child back."""
    which = ChildId.of(child)
    now_uid = state.applied_uids.get(which)
    now = state.applied.get(now_uid) if now_uid else None
    if event == "DELETED":
        # What the API server holds now: another reconcile (a sibling's event, a re-check) may have made it again
        # before this one ran.
        again = state.kube.get(str(child.get("apiVersion", "")), which.kind, which.name, which.namespace)
        now_uid = str(again["metadata"]["uid"]) if again else None
        now = fingerprint(again) if again else None
    message = repair_message(which, event, fingerprint(child), str(child["metadata"].get("uid", "")), now_uid, now)
    if message is None:
        return
    logger.info("%s/%s: %s", which.namespace, owner["metadata"]["name"], message)
    kopf.event(kopf.Body(cast(Any, dict(owner))), type="Normal", reason=str(Reason.REPAIRED), message=message)


def look_again(state: OperatorState, child: Mapping[str, Any]) -> None:
    """Refresh the owner's status a little later (one pending re-check per child)."""

    def look() -> None:
        try:
            update_owner(state, child, reconcile_owner=False)
        except Exception:
            logger.exception("could not refresh the status of the owner of %s", child["metadata"].get("name"))

    state.rechecks.schedule(str(child["metadata"].get("uid", "")), look)


def look_again_at_server(state: OperatorState, body: Mapping[str, Any], status: Mapping[str, Any]) -> None:
    """After the McpServer's own reconcile: a re-check when its status will change with no child event (its
    route on its way), through a stand-in child that names it as owner."""
    if not needs_another_look(status):
        return
    meta = body["metadata"]
    owner = {"apiVersion": f"{GROUP}/{VERSION}", "kind": KIND, "name": meta["name"], "uid": meta["uid"]}
    stand_in = {
        "kind": KIND,
        "metadata": {
            "uid": f"mcpserver-{meta['uid']}",
            "name": meta["name"],
            "namespace": meta["namespace"],
            "ownerReferences": [owner],
        },
    }
    look_again(state, stand_in)
