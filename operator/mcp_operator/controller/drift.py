"""Telling the operator's own writes from someone else's (pure).

Every child the operator applies is remembered by its uid with a fingerprint of what it looked like right after
the apply. A later event with the same fingerprint is the echo of that apply (or, for a workload, a status
change: pods became ready); any other fingerprint is someone's edit, which a reconcile puts back.

The fingerprint is the object's labels and annotations with its generation where the API server keeps one
(workloads, PodDisruptionBudgets, NetworkPolicies: their status does not change it), else with what a user
can edit (spec, data): a HorizontalPodAutoscaler's status updates, which change its resourceVersion, are not
edits.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

# The kinds whose events at the applied fingerprint still matter: their status is part of the owner's.
WORKLOADS = ("Deployment", "StatefulSet")
# What a user can change on a child without a generation, besides labels and annotations.
EDITABLE = ("spec", "data", "binaryData", "stringData", "type", "immutable")
# Annotations Kubernetes' own controllers and kubectl write (a Deployment's revision): not edits.
CONTROLLER_ANNOTATIONS = ("deployment.kubernetes.io/", "kubectl.kubernetes.io/")

ChildAction = Literal["reconcile", "status", "ignore"]


def fingerprint(child: Mapping[str, Any]) -> str:
    """What tells one version of a child's desired content from another (see the module's docstring)."""
    meta = child.get("metadata") or {}
    annotations = {
        key: value
        for key, value in (meta.get("annotations") or {}).items()
        if not key.startswith(CONTROLLER_ANNOTATIONS)
    }
    content: dict[str, Any] = {"labels": meta.get("labels") or {}, "annotations": annotations}
    if meta.get("generation"):
        content["generation"] = meta["generation"]
    else:
        content |= {key: child.get(key) for key in EDITABLE if key in child}
    digest = hashlib.sha256(json.dumps(content, sort_keys=True, default=str).encode()).hexdigest()[:16]
    return f"generation {meta['generation']} {digest}" if meta.get("generation") else f"content {digest}"


def child_event_action(event: str | None, kind: str, seen: str, applied: str | None) -> ChildAction:
    """What a child's event asks of its owner.

    `event` is the watch event's type (None for a listing: at start and whenever the watch is renewed), `seen`
    the fingerprint in the event, `applied` the one the operator's last apply left (None when this operator
    has not applied the object since it started).

    - A deleted child is put back (reconcile).
    - A listing of a child this operator has not applied yet is ignored: at start the McpServer's resume
      handler reconciles it anyway, and one reconcile per child would multiply the start-up work.
    - At the applied fingerprint: our echo. A workload's status (ready pods) is part of the owner's: refresh
      it. Any other kind: nothing to do.
    - Any other fingerprint is someone's edit (or an object another operator replica made): reconcile.
    """
    if event == "DELETED":
        return "reconcile"
    if applied is None and event is None:
        return "ignore"
    if seen == applied:
        return "status" if kind in WORKLOADS else "ignore"
    return "reconcile"


@dataclass(frozen=True)
class ChildId:
    """A child by what a user names it with."""

    namespace: str
    kind: str
    name: str

    @classmethod
    def of(cls, child: Mapping[str, Any]) -> ChildId:
        meta = child["metadata"]
        return cls(str(meta.get("namespace") or ""), str(child["kind"]), str(meta["name"]))


def repair_message(
    child: ChildId, event: str | None, seen: str, old_uid: str, now_uid: str | None, now: str | None
) -> str | None:
    """The Event text for what a reconcile prompted by a child's event repaired, or None when it changed
    nothing (an echo, an edit of fields the operator does not own, a child no longer wanted).

    `now_uid` and `now` are the uid and fingerprint of the child as the reconcile left it (None when it did not
    apply one of that name)."""
    if now_uid is None or now is None:
        return None
    if event == "DELETED":
        if now_uid == old_uid:
            return None
        return f"{child.kind} {child.name} was deleted; made it again"
    if now_uid == old_uid and now != seen:
        return f"{child.kind} {child.name} was changed; put back what the McpServer says"
    return None
