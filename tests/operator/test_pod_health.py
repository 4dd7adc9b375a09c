"""Ready and RedisReady tell the truth about the pods they speak for: one that cannot start makes the
condition False, naming the pod and why (pure: pods and events in, a finding out)."""

from __future__ import annotations

from typing import Any

import pytest

from mcp_operator.controller.rechecks import needs_another_look
from mcp_operator.managed_redis import decide_persistence
from mcp_operator.pod_health import PodHealth, needs_events, newest_warning, observe_pods, pod_trouble
from mcp_operator.redis_probe import Topology
from mcp_operator.status import compute_status
from tests.operator.manifests import OWNER, spec

HA = {"sessions": {"backend": "redis"}, "redis": {"highAvailability": {"enabled": True}}}


def pod(
    name: str = "demo-redis-1",
    *,
    waiting: str | None = None,
    message: str = "",
    phase: str = "Running",
    ready: bool = False,
    unschedulable: str | None = None,
    uid: str | None = None,
    deleting: bool = False,
) -> dict[str, Any]:
    state = {"waiting": {"reason": waiting, "message": message}} if waiting else {"running": {}}
    conditions = [{"type": "Ready", "status": "True" if ready else "False"}]
    if unschedulable is not None:
        conditions.append(
            {"type": "PodScheduled", "status": "False", "reason": "Unschedulable", "message": unschedulable}
        )
    status: dict[str, Any] = {"phase": phase, "conditions": conditions}
    if unschedulable is None:
        status["containerStatuses"] = [{"name": "redis", "state": state}]
    meta: dict[str, Any] = {"name": name, "uid": uid or f"uid-{name}"}
    if deleting:
        meta["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    return {"metadata": meta, "status": status}


def warning(pod_name: str, reason: str, message: str, at: str, uid: str | None = None) -> dict[str, Any]:
    return {
        "type": "Warning",
        "reason": reason,
        "message": message,
        "lastTimestamp": at,
        "involvedObject": {"kind": "Pod", "name": pod_name, "uid": uid or f"uid-{pod_name}"},
    }


MOUNT = 'MountVolume.SetUp failed for volume "scripts" : configmap "demo-redis-scripts" not found'


@pytest.mark.parametrize(
    ("the_pod", "events", "says"),
    [
        # The issue's case: the scripts' ConfigMap deleted, a restarted pod stuck creating its container.
        (
            pod(waiting="ContainerCreating", phase="Pending"),
            [warning("demo-redis-1", "FailedMount", MOUNT, "2026-01-01T00:00:05Z")],
            f"container redis ContainerCreating (FailedMount: {MOUNT})",
        ),
        (
            pod(waiting="CrashLoopBackOff", message="back-off 40s restarting failed container"),
            [],
            "container redis CrashLoopBackOff (back-off 40s restarting failed container)",
        ),
        (
            pod(waiting="ImagePullBackOff", phase="Pending"),
            [warning("demo-redis-1", "Failed", "Failed to pull image: not found", "2026-01-01T00:00:01Z")],
            "container redis ImagePullBackOff (Failed: Failed to pull image: not found)",
        ),
        (
            pod(phase="Pending", unschedulable="0/3 nodes are available: 3 Insufficient memory."),
            [],
            "Unschedulable: 0/3 nodes are available: 3 Insufficient memory.",
        ),
        (pod(waiting="CreateContainerConfigError", phase="Pending"), [], "container redis CreateContainerConfigError"),
    ],
)
def test_a_pod_that_cannot_start_says_why(the_pod: dict[str, Any], events: list[dict[str, Any]], says: str) -> None:
    assert pod_trouble(the_pod, events) == says
    assert needs_events([the_pod])


@pytest.mark.parametrize(
    ("the_pod", "events"),
    [
        (pod(ready=True), []),  # running
        (pod(waiting="ContainerCreating", phase="Pending"), []),  # starting, nothing says it is stuck
        # A Warning about the pod of the same name before it (a StatefulSet's pod comes back with its name).
        (
            pod(waiting="ContainerCreating", phase="Pending"),
            [warning("demo-redis-1", "FailedMount", MOUNT, "2026-01-01T00:00:05Z", uid="uid-old")],
        ),
        (pod(phase="Pending"), []),  # not scheduled yet
        (
            pod(waiting="CrashLoopBackOff", deleting=True),
            [],
        ),  # going away
        (pod(ready=True), [warning("demo-redis-1", "Unhealthy", "Readiness probe failed", "2026-01-01T00:00:05Z")]),
    ],
)
def test_a_pod_that_runs_or_is_starting_is_no_trouble(the_pod: dict[str, Any], events: list[dict[str, Any]]) -> None:
    assert pod_trouble(the_pod, events) is None


def test_the_newest_warning_about_the_pod_is_the_one_told() -> None:
    events = [
        warning("demo-redis-1", "FailedMount", "older", "2026-01-01T00:00:05Z"),
        warning("demo-redis-1", "FailedMount", "newer", "2026-01-01T00:01:05Z"),
        warning("demo-redis-2", "FailedMount", "another pod", "2026-01-01T00:02:05Z"),
        {**warning("demo-redis-1", "FailedMount", "normal", "2026-01-01T00:03:05Z"), "type": "Normal"},
    ]
    assert newest_warning(pod(), events) == "FailedMount: newer"
    assert newest_warning(pod("demo-redis-0"), events) is None


def redis_ready(s: dict[str, Any], top: Topology | None, pods: PodHealth | None, ready: int = 3) -> dict[str, Any]:
    the_spec = spec(**s)
    sts = {"status": {"readyReplicas": ready}}
    decided = decide_persistence(the_spec, sts, default_class=False)
    status = compute_status(
        owner=OWNER, spec=the_spec, generation=1, redis=sts, persistence=decided, topology=top, redis_pods=pods
    )
    return next(c for c in status["conditions"] if c["type"] == "RedisReady")


def test_redis_ready_is_false_while_a_redis_pod_cannot_start() -> None:
    stuck = pod("demo-redis-sentinel-2", waiting="ContainerCreating", phase="Pending")
    events = [warning("demo-redis-sentinel-2", "FailedMount", MOUNT, "2026-01-01T00:00:05Z")]
    pods = observe_pods([pod("demo-redis-0", ready=True), stuck], events)
    assert pods.failing == (f"pod demo-redis-sentinel-2: container redis ContainerCreating (FailedMount: {MOUNT})",)
    # The Sentinels that answer say all is well; the stuck pod says otherwise.
    found = redis_ready(HA, Topology("demo-redis-0.x", 2, 2), pods)
    assert (found["status"], found["reason"]) == ("False", "PodCannotStart")
    assert found["message"].startswith("pod demo-redis-sentinel-2: container redis ContainerCreating (FailedMount")
    assert "primary demo-redis-0.x; 2 of 2 replicas in sync" in found["message"]
    # Without high availability too.
    single = redis_ready({"sessions": {"backend": "redis"}}, None, observe_pods([stuck], events), ready=0)
    assert (single["status"], single["reason"]) == ("False", "PodCannotStart")


def test_redis_ready_says_which_pods_are_not_ready_yet() -> None:
    pods = observe_pods([pod("demo-redis-0", ready=True), pod("demo-redis-sentinel-1")], [])
    assert pods == PodHealth(failing=(), not_ready=("demo-redis-sentinel-1",))
    found = redis_ready(HA, Topology("demo-redis-0.x", 2, 2), pods)
    assert (found["status"], found["reason"]) == ("True", "PodsNotReady")
    assert found["message"].startswith("primary demo-redis-0.x; 2 of 2 replicas in sync")
    assert found["message"].endswith("not ready yet: demo-redis-sentinel-1")
    # Every pod ready: as before.
    whole = redis_ready(HA, Topology("demo-redis-0.x", 2, 2), observe_pods([pod("demo-redis-0", ready=True)], []))
    assert (whole["status"], whole["reason"]) == ("True", "Ready")
    # The pods could not be read: the rest decides.
    assert redis_ready(HA, Topology("demo-redis-0.x", 2, 2), None)["reason"] == "Ready"


@pytest.mark.parametrize(
    ("reason", "again"), [("PodCannotStart", True), ("PodsNotReady", True), ("NotReady", True), ("Ready", False)]
)
def test_pods_on_their_way_are_looked_at_again(reason: str, again: bool) -> None:
    """A pod stuck in ContainerCreating produces no event the operator watches: only a re-check sees it."""
    assert needs_another_look({"conditions": [{"type": "RedisReady", "reason": reason}]}) is again


def test_ready_is_false_at_once_while_a_server_pod_cannot_start() -> None:
    """A rollout stuck on a crash-looping or unpullable pod would otherwise read as merely in progress."""
    deployment = {
        "metadata": {"generation": 2},
        "spec": {"replicas": 2},
        "status": {"observedGeneration": 2, "replicas": 3, "readyReplicas": 2, "updatedReplicas": 1},
    }
    crashing = pod("demo-7c9-abcde", waiting="CrashLoopBackOff", message="back-off 40s restarting failed container")
    health = observe_pods([pod("demo-6b8-fghij", ready=True), crashing], [])
    status = compute_status(
        owner=OWNER, spec=spec(replicas=2), generation=2, deployment=deployment, server_pod_health=health
    )
    conditions = {c["type"]: c for c in status["conditions"]}
    ready = conditions["Ready"]
    assert (ready["status"], ready["reason"]) == ("False", "PodCannotStart")
    assert ready["message"] == (
        "2/2 pods ready; pod demo-7c9-abcde: container redis CrashLoopBackOff "
        "(back-off 40s restarting failed container)"
    )
    assert (conditions["Degraded"]["status"], conditions["Degraded"]["reason"]) == ("True", "PodCannotStart")
    assert needs_another_look(status)
    # Once it runs, the Deployment's counts decide again.
    healthy = observe_pods([pod("demo-6b8-fghij", ready=True)], [])
    again = compute_status(
        owner=OWNER, spec=spec(replicas=2), generation=2, deployment=deployment, server_pod_health=healthy
    )
    assert next(c for c in again["conditions"] if c["type"] == "Ready")["reason"] == "NotReady"


def test_ready_is_false_while_the_managed_redis_cannot_start() -> None:
    stuck = pod("demo-redis-0", waiting="ImagePullBackOff", message='Back-off pulling image "redis:nope"')
    the_spec = spec(sessions={"backend": "redis"})
    deployment = {
        "metadata": {"generation": 1},
        "spec": {"replicas": 1},
        "status": {"observedGeneration": 1, "replicas": 1, "readyReplicas": 1, "updatedReplicas": 1},
    }
    status = compute_status(
        owner=OWNER,
        spec=the_spec,
        generation=1,
        deployment=deployment,
        redis={"status": {"readyReplicas": 0}},
        redis_pods=observe_pods([stuck], []),
    )
    ready = next(c for c in status["conditions"] if c["type"] == "Ready")
    assert (ready["status"], ready["reason"]) == ("False", "PodCannotStart")
    assert "Redis: pod demo-redis-0: container redis ImagePullBackOff" in ready["message"]
