"""The handlers' decisions (pure): what is an edit, what is our echo, when status is written, which API errors
mean what."""

from __future__ import annotations

import pytest
from kubernetes.client.exceptions import ApiException

from mcp_operator.handlers import (
    child_event_action,
    immutable_field_refused,
    namespace_terminating,
    needs_another_look,
    status_changed,
)


@pytest.mark.parametrize(
    ("event", "kind", "generation", "applied", "action"),
    [
        # Our own apply's echo, and status changes at that generation (pods became ready): refresh status.
        ("MODIFIED", "Deployment", 4, 4, "status"),
        ("ADDED", "StatefulSet", 2, 2, "status"),
        # Someone edited a workload (a new generation we did not make): put it back.
        ("MODIFIED", "Deployment", 5, 4, "reconcile"),
        # After an operator restart nothing is known: reconcile once, which is idempotent.
        ("ADDED", "StatefulSet", 3, None, "reconcile"),
        # A deleted child of any kind comes back.
        ("DELETED", "Service", None, None, "reconcile"),
        ("DELETED", "Deployment", 4, 4, "reconcile"),
        # A Service's other events change nothing the status shows.
        ("MODIFIED", "Service", None, None, "ignore"),
        ("ADDED", "Service", None, None, "ignore"),
    ],
)
def test_child_event_action(event: str, kind: str, generation: int | None, applied: int | None, action: str) -> None:
    assert child_event_action(event, kind, generation, applied) == action


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
