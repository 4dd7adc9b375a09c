"""The reconcile steps and the routing of child events, against an in-memory API server (no cluster)."""

from __future__ import annotations

import copy
import itertools
import re
from collections.abc import Callable
from typing import Any, cast

import kopf
import pytest

from mcp_operator.config import OperatorSettings
from mcp_operator.controller import child_events, reconcile
from mcp_operator.controller.rechecks import Rechecks
from mcp_operator.controller.setup import OperatorState
from mcp_operator.controller.verifier import Verifier
from mcp_operator.desired import ChildRef
from mcp_operator.kube import Kube
from mcp_operator.redis_probe import Topology

Key = tuple[str, str, str, str]


class MemoryKube:
    """The few calls the controller makes, on a dict; a workload is ready as soon as it is applied."""

    def __init__(self) -> None:
        self.objects: dict[Key, dict[str, Any]] = {}
        self.applied: list[str] = []
        self.statuses: list[dict[str, Any]] = []
        self._uids = itertools.count(1)

    def _key(self, manifest: dict[str, Any]) -> Key:
        meta = manifest["metadata"]
        return manifest["apiVersion"], manifest["kind"], meta["name"], meta["namespace"]

    def get(self, api_version: str, kind: str, name: str, namespace: str) -> dict[str, Any] | None:
        found = self.objects.get((api_version, kind, name, namespace))
        return copy.deepcopy(found) if found else None

    def create_if_absent(self, manifest: dict[str, Any]) -> dict[str, Any]:
        if self._key(manifest) not in self.objects:
            self.apply(manifest)
        return copy.deepcopy(self.objects[self._key(manifest)])

    def apply(self, manifest: dict[str, Any]) -> dict[str, Any]:
        self.applied.append(f"{manifest['kind']}/{manifest['metadata']['name']}")
        old = self.objects.get(self._key(manifest))
        new = copy.deepcopy(manifest)
        new["metadata"]["uid"] = old["metadata"]["uid"] if old else f"uid-{next(self._uids)}"
        generation = old["metadata"]["generation"] if old else 0
        new["metadata"]["generation"] = generation + (old is None or old.get("spec") != manifest.get("spec"))
        if manifest["kind"] == "Deployment":
            n = manifest["spec"].get("replicas", 1)
            new["status"] = {"observedGeneration": new["metadata"]["generation"]} | dict.fromkeys(
                ["replicas", "readyReplicas", "availableReplicas", "updatedReplicas"], n
            )
        if manifest["kind"] == "StatefulSet":
            new["status"] = {"readyReplicas": manifest["spec"]["replicas"]}
        self.objects[self._key(manifest)] = new
        return copy.deepcopy(new)

    def has_default_storage_class(self) -> bool:
        return False

    def list(
        self, api_version: str, kind: str, namespace: str, label_selector: str = "", field_selector: str = ""
    ) -> list[dict[str, Any]]:
        """The selectors the controller uses: `k=v` and `k in (a,b)` labels, `type=Warning` events."""
        found = []
        for (version, each_kind, _, each_namespace), obj in self.objects.items():
            if (version, each_kind, each_namespace) != (api_version, kind, namespace):
                continue
            labels = obj["metadata"].get("labels") or {}
            terms = [t for t in re.split(r",(?![^(]*\))", label_selector) if t]
            typed = not field_selector or obj.get("type") == field_selector.removeprefix("type=")
            if typed and all(matches(labels, term) for term in terms):
                found.append(copy.deepcopy(obj))
        return found

    def delete(self, ref: ChildRef, namespace: str, owner_uid: str) -> bool:
        return self.objects.pop((ref.api_version, ref.kind, ref.name, namespace), None) is not None

    def patch_status(self, api_version: str, kind: str, name: str, namespace: str, status: dict[str, Any]) -> None:
        self.statuses.append(status)
        self.objects[(api_version, kind, name, namespace)]["status"] = copy.deepcopy(status)


def matches(labels: dict[str, str], term: str) -> bool:
    if " in " in term:
        key, values = term.split(" in ")
        return labels.get(key.strip()) in values.strip("() ").split(",")
    key, value = term.split("=")
    return labels.get(key) == value


class NoLoop:
    """Rechecks' view of a loop: records what would be looked at again."""

    def __init__(self) -> None:
        self.keys: list[str] = []

    def is_closed(self) -> bool:
        return False

    def call_soon_threadsafe(self, add: Callable[..., None], key: str, look: Callable[[], None]) -> None:
        self.keys.append(key)


class ProbeLoop:
    """The verifier's view of a loop: records which McpServers it was asked to consider."""

    def __init__(self) -> None:
        self.considered: list[tuple[tuple[str, str, str], float | None]] = []

    def is_closed(self) -> bool:
        return False

    def call_soon_threadsafe(self, schedule: Callable[..., None], key: tuple[str, str, str], delay: Any) -> None:
        self.considered.append((key, delay))


def make_state(kube: MemoryKube, loop: NoLoop) -> OperatorState:
    verifier = Verifier(cast(Any, ProbeLoop()), cast(Kube, kube))
    return OperatorState(
        kube=cast(Kube, kube), settings=OperatorSettings(), rechecks=Rechecks(cast(Any, loop)), verifier=verifier
    )


def mcp_server(kube: MemoryKube, spec: dict[str, Any]) -> dict[str, Any]:
    body = {
        "apiVersion": "mcpfleet.dev/v1alpha1",
        "kind": "McpServer",
        "metadata": {"name": "demo", "namespace": "team-a", "uid": "owner-uid", "generation": 1},
        "spec": spec,
    }
    kube.objects[("mcpfleet.dev/v1alpha1", "McpServer", "demo", "team-a")] = body
    return body


def test_a_reconcile_applies_the_children_and_reports_them_ready() -> None:
    kube, loop = MemoryKube(), NoLoop()
    state = make_state(kube, loop)
    status = reconcile.reconcile(state, mcp_server(kube, {"replicas": 2, "sessions": {"backend": "redis"}}))
    assert {"Secret/demo-request-state", "Secret/demo-redis-auth", "StatefulSet/demo-redis", "Deployment/demo"} <= set(
        kube.applied
    )
    conditions = {c["type"]: (c["status"], c["reason"]) for c in status["conditions"]}
    assert conditions["Ready"] == ("True", "Ready") and conditions["RedisReady"] == ("True", "Ready")
    deployment = kube.get("apps/v1", "Deployment", "demo", "team-a")
    assert deployment is not None and deployment["spec"]["template"]["spec"]["containers"][0]["image"]
    assert state.applied[deployment["metadata"]["uid"]].startswith("generation 1 ")


def test_our_own_echo_refreshes_the_status_and_a_deleted_child_comes_back() -> None:
    kube, loop = MemoryKube(), NoLoop()
    state = make_state(kube, loop)
    reconcile.reconcile(state, mcp_server(kube, {}))
    deployment = kube.get("apps/v1", "Deployment", "demo", "team-a")
    assert deployment is not None
    kube.applied.clear()
    child_events.on_child_event(state, deployment, "MODIFIED")
    assert not kube.applied and len(kube.statuses) == 1  # the status only, written once
    child_events.on_child_event(state, deployment, "MODIFIED")
    assert len(kube.statuses) == 1  # unchanged: nothing written
    del kube.objects[("apps/v1", "Deployment", "demo", "team-a")]
    child_events.on_child_event(state, deployment, "DELETED")
    assert "Deployment/demo" in kube.applied and kube.get("apps/v1", "Deployment", "demo", "team-a")
    assert not loop.keys


def test_an_unsettled_redis_is_looked_at_again(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(reconcile, "ask_sentinels", lambda owner, password: Topology("demo-redis-0", 2, 1))
    kube, loop = MemoryKube(), NoLoop()
    state = make_state(kube, loop)
    spec = {"sessions": {"backend": "redis"}, "redis": {"highAvailability": {"enabled": True}}}
    reconcile.reconcile(state, mcp_server(kube, spec))
    data = kube.get("apps/v1", "StatefulSet", "demo-redis", "team-a")
    assert data is not None
    child_events.on_child_event(state, data, "MODIFIED")
    assert loop.keys == [data["metadata"]["uid"]]
    redis_ready = next(c for c in kube.statuses[-1]["conditions"] if c["type"] == "RedisReady")
    assert redis_ready["reason"] == "ReplicasOutOfSync"


def test_a_redis_pod_that_cannot_start_makes_redis_ready_false_and_is_looked_at_again() -> None:
    kube, loop = MemoryKube(), NoLoop()
    state = make_state(kube, loop)
    reconcile.reconcile(state, mcp_server(kube, {"sessions": {"backend": "redis"}}))
    # The scripts' ConfigMap is not there, say: the restarted pod waits in ContainerCreating, a FailedMount says why.
    labels = {"app.kubernetes.io/instance": "demo", "app.kubernetes.io/component": "redis"}
    stuck: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "demo-redis-0", "namespace": "team-a", "uid": "pod-uid", "labels": labels},
        "status": {
            "phase": "Pending",
            "containerStatuses": [{"name": "redis", "state": {"waiting": {"reason": "ContainerCreating"}}}],
        },
    }
    server_pod = copy.deepcopy(stuck)
    server_pod["metadata"].update(name="demo-abc", labels={**labels, "app.kubernetes.io/component": "server"})
    event: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"name": "demo-redis-0.1", "namespace": "team-a"},
        "type": "Warning",
        "reason": "FailedMount",
        "message": 'MountVolume.SetUp failed for volume "data" : not found',
        "lastTimestamp": "2026-01-01T00:00:00Z",
        "involvedObject": {"kind": "Pod", "name": "demo-redis-0", "uid": "pod-uid"},
    }
    for obj in (stuck, server_pod, event):
        kube.objects[("v1", obj["kind"], obj["metadata"]["name"], "team-a")] = obj
    data = kube.get("apps/v1", "StatefulSet", "demo-redis", "team-a")
    assert data is not None
    child_events.on_child_event(state, data, "MODIFIED")
    redis_ready = next(c for c in kube.statuses[-1]["conditions"] if c["type"] == "RedisReady")
    assert (redis_ready["status"], redis_ready["reason"]) == ("False", "PodCannotStart")
    assert redis_ready["message"].startswith(
        'pod demo-redis-0: container redis ContainerCreating (FailedMount: MountVolume.SetUp failed for volume "data"'
    )
    assert "demo-abc" not in redis_ready["message"]  # a server pod is not the Redis's
    assert loop.keys == [data["metadata"]["uid"]]  # no pod event will come: the status is looked at again


def recorded_events(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str, str]]:
    """The Kubernetes Events the controller posts, as (type, reason, message)."""
    events: list[tuple[str, str, str]] = []

    def event(body: Any, *, type: str, reason: str, message: str = "") -> None:
        events.append((type, reason, message))

    monkeypatch.setattr(kopf, "event", event)
    return events


def test_a_deleted_generated_secret_comes_back_with_the_value_the_pods_use(monkeypatch: pytest.MonkeyPatch) -> None:
    events = recorded_events(monkeypatch)
    kube, loop = MemoryKube(), NoLoop()
    state = make_state(kube, loop)
    reconcile.reconcile(state, mcp_server(kube, {"sessions": {"backend": "redis"}}))
    key = ("v1", "Secret", "demo-redis-auth", "team-a")
    before = kube.objects[key]
    template = kube.objects[("apps/v1", "Deployment", "demo", "team-a")]["spec"]["template"]
    del kube.objects[key]
    child_events.on_child_event(state, before, "DELETED")
    after = kube.objects[key]
    assert after["data"] == before["data"] and after["metadata"]["uid"] != before["metadata"]["uid"]
    # The pods are not rolled: the digest of the Secret they read is unchanged.
    assert kube.objects[("apps/v1", "Deployment", "demo", "team-a")]["spec"]["template"] == template
    assert events == [("Normal", "Repaired", "Secret demo-redis-auth was deleted; made it again")]


def test_a_secret_deleted_while_its_value_was_unknown_is_made_new_and_said(monkeypatch: pytest.MonkeyPatch) -> None:
    events = recorded_events(monkeypatch)
    kube, loop = MemoryKube(), NoLoop()
    reconcile.reconcile(make_state(kube, loop), mcp_server(kube, {"sessions": {"backend": "redis"}}))
    body = kube.objects[("mcpfleet.dev/v1alpha1", "McpServer", "demo", "team-a")]
    body["status"] = {"conditions": [{"type": "Ready", "status": "True"}]}
    key = ("v1", "Secret", "demo-redis-auth", "team-a")
    before = kube.objects.pop(key)
    restarted = make_state(kube, loop)  # an operator that never read the value
    reconcile.reconcile(restarted, body)
    assert kube.objects[key]["data"] != before["data"]
    assert [(kind, reason) for kind, reason, _ in events] == [("Warning", "GeneratedSecretReplaced")]
    assert "demo-redis-auth" in events[0][2] and "roll" in events[0][2]


def test_an_edited_child_is_put_back_and_said_once(monkeypatch: pytest.MonkeyPatch) -> None:
    events = recorded_events(monkeypatch)
    kube, loop = MemoryKube(), NoLoop()
    state = make_state(kube, loop)
    reconcile.reconcile(state, mcp_server(kube, {"disruptionBudget": {"maxUnavailable": 1}}))
    key = ("policy/v1", "PodDisruptionBudget", "demo", "team-a")
    edited = copy.deepcopy(kube.objects[key])
    edited["spec"]["maxUnavailable"] = 3
    edited["metadata"]["generation"] += 1
    kube.objects[key] = copy.deepcopy(edited)
    child_events.on_child_event(state, edited, "MODIFIED")
    assert kube.objects[key]["spec"]["maxUnavailable"] == 1
    assert events == [("Normal", "Repaired", "PodDisruptionBudget demo was changed; put back what the McpServer says")]
    # The echo of the repair is ours: nothing more.
    child_events.on_child_event(state, kube.objects[key], "MODIFIED")
    assert len(events) == 1


def test_a_deleted_service_is_made_again_at_its_old_address(monkeypatch: pytest.MonkeyPatch) -> None:
    """Clients that resolved the Service's name before go on reaching it (DNS answers are cached)."""
    recorded_events(monkeypatch)
    kube, loop = MemoryKube(), NoLoop()
    state = make_state(kube, loop)
    reconcile.reconcile(state, mcp_server(kube, {}))
    key = ("v1", "Service", "demo", "team-a")
    service = kube.objects.pop(key)
    service["spec"]["clusterIP"] = "10.96.7.7"
    created: list[dict[str, Any]] = []
    create = kube.create_if_absent

    def create_if_absent(manifest: dict[str, Any]) -> dict[str, Any]:
        created.append(copy.deepcopy(manifest))
        return create(manifest)

    monkeypatch.setattr(kube, "create_if_absent", create_if_absent)
    child_events.on_child_event(state, service, "DELETED")
    asked = [m["spec"].get("clusterIP") for m in created if m["kind"] == "Service"]
    assert asked == ["10.96.7.7"] and key in kube.objects
    # Asked once: a later reconcile applies the Service as usual.
    created.clear()
    reconcile.reconcile(state, kube.objects[("mcpfleet.dev/v1alpha1", "McpServer", "demo", "team-a")])
    assert not [m for m in created if m["kind"] == "Service"]
