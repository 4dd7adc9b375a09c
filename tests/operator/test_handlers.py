"""The handlers' decisions (pure): what is an edit, what is our echo, when status is written, which API errors
mean what."""

from __future__ import annotations

import asyncio
import copy
from collections.abc import Callable

import kopf
import pytest
from kubernetes.client.exceptions import ApiException

import mcp_operator.controller.registration  # noqa: F401 - registers the handlers
from mcp_operator.controller import setup
from mcp_operator.controller.child_events import child_event_action, namespace_terminating, status_changed
from mcp_operator.controller.rechecks import Rechecks, needs_another_look
from mcp_operator.controller.reconcile import immutable_field_refused


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
    assert state.kube is client and state.applied_generations == {}
    assert settings.execution.max_workers == 16
    assert setup.state_of(copy.copy(memo)) is state  # kopf's per-object memos are shallow copies
    setup.stop(memo)
