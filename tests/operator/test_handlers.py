"""The handlers' decisions (pure): what is an edit, what is our echo, when status is written, which API errors
mean what."""

from __future__ import annotations

import asyncio
import copy
from collections.abc import Callable
from typing import Any

import kopf
import pytest
from kubernetes.client.exceptions import ApiException

import mcp_operator.controller.registration  # noqa: F401 - registers the handlers
from mcp_operator.controller import setup
from mcp_operator.controller.child_events import namespace_terminating, status_changed
from mcp_operator.controller.drift import ChildId, child_event_action, fingerprint, repair_message
from mcp_operator.controller.rechecks import Rechecks, needs_another_look
from mcp_operator.controller.reconcile import RECONCILE_REQUEST, immutable_field_refused, requested


@pytest.mark.parametrize(
    ("event", "kind", "seen", "applied", "action"),
    [
        # Our own apply's echo, and status changes at that generation (pods became ready): refresh status.
        ("MODIFIED", "Deployment", "generation 4", "generation 4", "status"),
        ("ADDED", "StatefulSet", "generation 2", "generation 2", "status"),
        (None, "Deployment", "generation 4", "generation 4", "status"),
        # Someone edited a workload (a new generation we did not make): put it back.
        ("MODIFIED", "Deployment", "generation 5", "generation 4", "reconcile"),
        # Another operator replica made it, or it was edited right after a restart: reconcile (idempotent).
        ("ADDED", "StatefulSet", "generation 3", None, "reconcile"),
        ("MODIFIED", "ConfigMap", "content b", None, "reconcile"),
        # A listing of what this operator has not applied yet: the McpServer's resume handler reconciles it.
        (None, "StatefulSet", "generation 3", None, "ignore"),
        (None, "Secret", "content a", None, "ignore"),
        # A deleted child of any kind comes back.
        ("DELETED", "Service", "content a", "content a", "reconcile"),
        ("DELETED", "Deployment", "generation 4", "generation 4", "reconcile"),
        ("DELETED", "NetworkPolicy", "generation 1", None, "reconcile"),
        # Other kinds: the echo of our apply changes nothing the status shows; an edit is put back.
        ("MODIFIED", "Service", "content a", "content a", "ignore"),
        ("ADDED", "PodDisruptionBudget", "generation 1", "generation 1", "ignore"),
        ("MODIFIED", "ConfigMap", "content b", "content a", "reconcile"),
        ("MODIFIED", "Secret", "content b", "content a", "reconcile"),
        ("MODIFIED", "PodDisruptionBudget", "generation 2", "generation 1", "reconcile"),
        (None, "NetworkPolicy", "generation 2", "generation 1", "reconcile"),
    ],
)
def test_child_event_action(event: str | None, kind: str, seen: str, applied: str | None, action: str) -> None:
    assert child_event_action(event, kind, seen, applied) == action


def test_a_fingerprint_is_the_generation_or_what_a_user_can_edit() -> None:
    pdb = {"kind": "PodDisruptionBudget", "metadata": {"generation": 3, "resourceVersion": "7"}, "spec": {}}
    assert fingerprint(pdb).startswith("generation 3 ")
    assert fingerprint({**pdb, "status": {"disruptionsAllowed": 1}}) == fingerprint(pdb)
    # A label edited on a workload changes no generation, but is an edit; a rollout's revision is not.
    deployment: dict[str, Any] = {"kind": "Deployment", "metadata": {"generation": 2, "labels": {"a": "b"}}}
    assert fingerprint({**deployment, "metadata": {"generation": 2, "labels": {"a": "c"}}}) != fingerprint(deployment)
    revised = {"generation": 2, "labels": {"a": "b"}, "annotations": {"deployment.kubernetes.io/revision": "3"}}
    assert fingerprint({**deployment, "metadata": revised}) == fingerprint(deployment)
    hpa: dict[str, Any] = {
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"resourceVersion": "7", "labels": {"a": "b"}},
        "spec": {"minReplicas": 2},
    }
    # Status updates and new resourceVersions are not edits; the spec, labels and annotations are.
    same = {**hpa, "metadata": {**hpa["metadata"], "resourceVersion": "9"}, "status": {"currentReplicas": 3}}
    assert fingerprint(same) == fingerprint(hpa)
    assert fingerprint({**hpa, "spec": {"minReplicas": 1}}) != fingerprint(hpa)
    assert fingerprint({**hpa, "metadata": {"labels": {"a": "c"}}}) != fingerprint(hpa)
    config_map = {"kind": "ConfigMap", "metadata": {}, "data": {"start.sh": "x"}}
    assert fingerprint({**config_map, "data": {"start.sh": "y"}}) != fingerprint(config_map)


@pytest.mark.parametrize(
    ("event", "seen", "old_uid", "now_uid", "now", "message"),
    [
        ("DELETED", "content a", "u1", "u2", "content a", "ConfigMap demo-redis-scripts was deleted; made it again"),
        # Deleted and no longer wanted (the reconcile removed it itself), or not made again: nothing repaired.
        ("DELETED", "content a", "u1", None, None, None),
        ("DELETED", "content a", "u1", "u1", "content a", None),
        ("MODIFIED", "content b", "u1", "u1", "content a", "ConfigMap demo-redis-scripts was changed; put back"),
        # An edit of fields the operator does not own: the apply changed nothing.
        ("MODIFIED", "content b", "u1", "u1", "content b", None),
    ],
)
def test_what_a_repair_event_says(
    event: str, seen: str, old_uid: str, now_uid: str | None, now: str | None, message: str | None
) -> None:
    child = ChildId("team-a", "ConfigMap", "demo-redis-scripts")
    said = repair_message(child, event, seen, old_uid, now_uid, now)
    assert (said is None) == (message is None)
    assert said is None or message is None or said.startswith(message)


def test_status_is_written_only_when_it_changes() -> None:
    status = {"conditions": [{"type": "Ready", "status": "True"}], "readyReplicas": 2}
    assert not status_changed(dict(status), status)
    assert status_changed(None, status)
    assert status_changed({**status, "readyReplicas": 1}, status)


def api_error(status: int, message: str) -> ApiException:
    error = ApiException(status=status, reason="x")
    error.body = message
    return error


def test_api_errors_are_told_apart() -> None:
    immutable = api_error(
        422,
        'StatefulSet.apps "demo-redis" is invalid: spec: Forbidden: updates to statefulset spec for fields other '
        "than 'replicas', 'ordinals', 'template', 'updateStrategy'... are forbidden",
    )
    assert immutable_field_refused(immutable)
    assert not immutable_field_refused(api_error(422, "spec.replicas: Invalid value: -1"))
    assert not immutable_field_refused(api_error(409, "updates to statefulset spec for fields other than"))
    terminating = api_error(
        403, "unable to create new content in namespace x because it is being terminated: NamespaceTerminating"
    )
    assert namespace_terminating(terminating) and not namespace_terminating(immutable)


@pytest.mark.parametrize(
    ("reason", "again"),
    [("ReplicasOutOfSync", True), ("NoPrimary", True), ("SentinelsUnreachable", True), ("Ready", False)],
)
def test_a_status_the_sentinels_will_change_is_looked_at_again(reason: str, again: bool) -> None:
    status = {"conditions": [{"type": "Ready", "reason": "Ready"}, {"type": "RedisReady", "reason": reason}]}
    assert needs_another_look(status) is again
    assert not needs_another_look({"conditions": [{"type": "Ready", "reason": "NoPrimary"}]})


async def test_a_recheck_runs_once_per_child_after_the_delay() -> None:
    loop = asyncio.get_running_loop()
    rechecks = Rechecks(loop, delay=0.05)
    looks: list[str] = []
    done = asyncio.Event()

    def look(name: str) -> Callable[[], None]:
        def run() -> None:
            looks.append(name)
            loop.call_soon_threadsafe(done.set)

        return run

    # From handler threads, as kopf's sync handlers call it: the second look at one child is dropped.
    await asyncio.gather(*(asyncio.to_thread(rechecks.schedule, "uid-1", look(f"look-{i}")) for i in range(2)))
    assert not looks
    await asyncio.wait_for(done.wait(), 5)
    assert len(looks) == 1
    # Once it ran, the child can be looked at again; a pending look is dropped when the operator stops.
    done.clear()
    rechecks.schedule("uid-1", look("again"))
    await asyncio.wait_for(done.wait(), 5)
    rechecks.schedule("uid-2", look("never"))
    await asyncio.sleep(0)  # schedule hands the look to the loop
    rechecks.cancel_all()
    await asyncio.sleep(0.1)
    assert looks[1:] == ["again"]


def test_the_handlers_keep_their_ids() -> None:
    """kopf keeps each change handler's progress in McpServer annotations under its id: renaming a handler would
    strand them."""
    registry = kopf.get_default_registry()
    ids = {h.id for h in registry._changing.get_all_handlers()} | {h.id for h in registry._watching.get_all_handlers()}
    assert {"on_change", "on_change/spec", "on_server_event", "on_child_event"} <= ids


async def test_startup_puts_the_operators_state_in_kopfs_memo(monkeypatch: pytest.MonkeyPatch) -> None:
    client = object()
    monkeypatch.setattr(setup, "Kube", lambda: client)  # no cluster here
    memo = kopf.Memo()
    with pytest.raises(RuntimeError):
        setup.state_of(memo)
    settings = kopf.OperatorSettings()
    setup.start(settings, memo)
    state = setup.state_of(memo)
    assert state.kube is client and state.applied == {}
    assert settings.execution.max_workers == 16
    assert setup.state_of(copy.copy(memo)) is state  # kopf's per-object memos are shallow copies
    setup.stop(memo)


@pytest.mark.parametrize(
    ("annotation", "acted_on", "asked"),
    [
        ("2026-11-30T05:00:00Z", None, "2026-11-30T05:00:00Z"),  # a first request
        ("2026-11-30T05:00:00Z", "2026-11-30T05:00:00Z", None),  # done already (the echo of our status patch)
        ("2", "1", "2"),  # a new one
        (None, "1", None),
        ("", None, None),
    ],
)
def test_a_reconcile_is_asked_for_by_a_new_annotation_value(
    annotation: str | None, acted_on: str | None, asked: str | None
) -> None:
    annotations = {} if annotation is None else {RECONCILE_REQUEST: annotation}
    body = {"metadata": {"annotations": annotations}, "status": {"reconcileRequest": acted_on}}
    assert requested(body) == asked
