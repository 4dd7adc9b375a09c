"""The McpServer's status, computed from what its children report (pure).

Each condition is one small function from what was observed to a `Finding` (status, reason, message);
`compute_status` puts them in order and keeps each one's lastTransitionTime while its status holds.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from mcp_operator.api import McpServerSpec
from mcp_operator.exposure import external_url
from mcp_operator.managed_redis import Persistence
from mcp_operator.names import Owner
from mcp_operator.networking import effective_affinity, service_url
from mcp_operator.pod_health import PodHealth
from mcp_operator.redis_probe import Topology
from mcp_operator.verification import VERIFIED


class ConditionType(StrEnum):
    READY = "Ready"
    AVAILABLE = "Available"
    PROGRESSING = "Progressing"
    DEGRADED = "Degraded"
    REDIS_READY = "RedisReady"
    SESSION_AFFINITY = "SessionAffinity"
    EXPOSED = "Exposed"


class Reason(StrEnum):
    """The reasons a condition gives (CamelCase, as Kubernetes conditions do)."""

    # Ready, RedisReady
    READY = "Ready"
    NOT_READY = "NotReady"
    # Degraded; RedisReady (True) while some Redis pod is not ready yet
    INVALID_SPEC = "InvalidSpec"
    PODS_NOT_READY = "PodsNotReady"
    AS_EXPECTED = "AsExpected"
    # Available
    MINIMUM_REPLICAS_AVAILABLE = "MinimumReplicasAvailable"
    NO_REPLICAS_AVAILABLE = "NoReplicasAvailable"
    # Progressing
    ROLLING_OUT = "RollingOut"
    ROLLED_OUT = "RolledOut"
    # RedisReady of a managed Redis with high availability, and of an external Redis
    SENTINELS_UNREACHABLE = "SentinelsUnreachable"
    NO_PRIMARY = "NoPrimary"
    REPLICAS_OUT_OF_SYNC = "ReplicasOutOfSync"
    # RedisReady of a managed Redis: a pod cannot start (False), or some are not ready yet (PodsNotReady above)
    POD_CANNOT_START = "PodCannotStart"
    EXTERNAL = "External"
    # SessionAffinity
    CLIENT_IP_AFFINITY = "ClientIPAffinity"
    SESSIONS_WILL_BREAK = "SessionsWillBreak"
    # Exposed
    ROUTED = "Routed"
    WAITING_FOR_CONTROLLER = "WaitingForController"
    NOT_ACCEPTED = "NotAccepted"
    KIND_NOT_SERVED = "KindNotServed"
    ROUTE_MISSING = "RouteMissing"
    # Events (not conditions): a child put back; a generated Secret made again with a new value
    REPAIRED = "Repaired"
    GENERATED_SECRET_REPLACED = "GeneratedSecretReplaced"


@dataclass(frozen=True)
class Finding:
    """One condition as observed: status True (ok), False or Unknown (None), why, and what a user can act on."""

    type: ConditionType
    ok: bool | None
    reason: Reason
    message: str = ""


@dataclass(frozen=True)
class Route:
    """The HTTPRoute or Ingress of spec.expose as observed: whether the cluster serves its kind, the object."""

    kind: str
    served: bool
    found: dict[str, Any] | None = None


def exposed(spec: McpServerSpec, route: Route | None) -> Finding | None:
    """Exposed, for spec.expose only: the route exists and its Gateway accepted it (an Ingress: its controller
    gave it an address)."""
    if spec.expose is None or route is None:
        return None
    kind = ConditionType.EXPOSED
    url = external_url(spec)
    if not route.served:
        api = "the Gateway API CRDs (gateway.networking.k8s.io)" if route.kind == "HTTPRoute" else "Ingress"
        message = f"the cluster does not serve {route.kind}: install {api}, or remove spec.expose"
        return Finding(kind, False, Reason.KIND_NOT_SERVED, message)
    if route.found is None:
        return Finding(kind, False, Reason.ROUTE_MISSING, f"the {route.kind} is not there yet; it is being made")
    status = route.found.get("status") or {}
    if route.kind == "Ingress":
        addresses = [a.get("ip") or a.get("hostname") for a in (status.get("loadBalancer") or {}).get("ingress") or []]
        if not addresses:
            return Finding(kind, None, Reason.WAITING_FOR_CONTROLLER, f"{url}: no ingress controller took it yet")
        return Finding(kind, True, Reason.ROUTED, f"{url} through the Ingress at {', '.join(map(str, addresses))}")
    parents = status.get("parents") or []
    refused = []
    for parent in parents:
        ref = parent.get("parentRef") or {}
        for condition in parent.get("conditions") or []:
            if condition.get("type") in ("Accepted", "ResolvedRefs") and condition.get("status") == "False":
                refused.append(f"Gateway {ref.get('name')}: {condition.get('reason')}: {condition.get('message', '')}")
    if refused:
        return Finding(kind, False, Reason.NOT_ACCEPTED, "; ".join(refused))
    accepted = [
        str((p.get("parentRef") or {}).get("name"))
        for p in parents
        if any(c.get("type") == "Accepted" and c.get("status") == "True" for c in p.get("conditions") or [])
    ]
    if not accepted:
        return Finding(kind, None, Reason.WAITING_FOR_CONTROLLER, f"{url}: no Gateway accepted the route yet")
    return Finding(kind, True, Reason.ROUTED, f"{url} through Gateway {', '.join(accepted)}")


@dataclass(frozen=True)
class ServerPods:
    """The server Deployment as its status reports it."""

    exists: bool
    desired: int
    replicas: int
    ready: int
    available: int
    updated: int
    rolled_out: bool


def server_pods(spec: McpServerSpec, deployment: dict[str, Any] | None) -> ServerPods:
    status = (deployment or {}).get("status") or {}
    desired = int(((deployment or {}).get("spec") or {}).get("replicas", spec.replicas))
    replicas = int(status.get("replicas") or 0)
    updated = int(status.get("updatedReplicas") or 0)
    rolled_out = (
        deployment is not None
        and (status.get("observedGeneration") or 0) >= deployment["metadata"].get("generation", 0)
        and updated >= desired
        and replicas == desired
    )
    return ServerPods(
        exists=deployment is not None,
        desired=desired,
        replicas=replicas,
        ready=int(status.get("readyReplicas") or 0),
        available=int(status.get("availableReplicas") or 0),
        updated=updated,
        rolled_out=rolled_out,
    )


def degraded(pods: ServerPods, problems: Sequence[str], health: PodHealth | None = None) -> Finding:
    if problems:
        return Finding(ConditionType.DEGRADED, True, Reason.INVALID_SPEC, "; ".join(problems))
    if health is not None and health.failing:
        return Finding(ConditionType.DEGRADED, True, Reason.POD_CANNOT_START, "; ".join(health.failing))
    if pods.exists and pods.desired and pods.ready < pods.desired and pods.rolled_out:
        message = f"{pods.ready} of {pods.desired} pods ready"
        return Finding(ConditionType.DEGRADED, True, Reason.PODS_NOT_READY, message)
    return Finding(ConditionType.DEGRADED, False, Reason.AS_EXPECTED)


def available(pods: ServerPods) -> Finding:
    reason = Reason.MINIMUM_REPLICAS_AVAILABLE if pods.available > 0 else Reason.NO_REPLICAS_AVAILABLE
    ok = pods.available > 0 or pods.desired == 0
    return Finding(ConditionType.AVAILABLE, ok, reason, f"{pods.available} pods available")


def progressing(pods: ServerPods) -> Finding:
    reason = Reason.ROLLED_OUT if pods.rolled_out else Reason.ROLLING_OUT
    return Finding(
        ConditionType.PROGRESSING, not pods.rolled_out, reason, f"{pods.updated} of {pods.desired} pods updated"
    )


def managed_redis_ready(
    spec: McpServerSpec,
    redis: dict[str, Any] | None,
    persistence: Persistence | None,
    topology: Topology | None,
    pods: PodHealth | None = None,
) -> Finding:
    """RedisReady of a managed Redis: its pods, and with high availability the primary and how many replicas are
    in sync, as the Sentinels say. A pod that cannot start makes it False, naming the pod and why."""
    found = _managed_redis_state(spec, redis, persistence, topology)
    if pods is None:
        return found
    if pods.failing:
        message = f"{'; '.join(pods.failing)}; {found.message}"
        return Finding(ConditionType.REDIS_READY, False, Reason.POD_CANNOT_START, message)
    if pods.not_ready and found.reason == Reason.READY:
        message = f"{found.message}; not ready yet: {', '.join(pods.not_ready)}"
        return Finding(ConditionType.REDIS_READY, found.ok, Reason.PODS_NOT_READY, message)
    return found


def _managed_redis_state(
    spec: McpServerSpec, redis: dict[str, Any] | None, persistence: Persistence | None, topology: Topology | None
) -> Finding:
    ready_pods = int(((redis or {}).get("status") or {}).get("readyReplicas") or 0)
    stored = f"; persistence {persistence.reason}" if persistence else ""
    kind = ConditionType.REDIS_READY
    if not spec.redis.high_availability.enabled:
        if ready_pods >= 1:
            return Finding(kind, True, Reason.READY, f"the managed Redis is ready{stored}")
        return Finding(kind, False, Reason.NOT_READY, f"the managed Redis is not ready yet{stored}")
    wanted = spec.redis.high_availability.replicas
    pods = f"{ready_pods} of {wanted} Redis pods ready"
    if topology is None or topology.error is not None:
        why = topology.error if topology is not None and topology.error else "not asked"
        message = f"{pods}; the operator could not ask the Sentinels ({why}){stored}"
        return Finding(kind, ready_pods >= 1, Reason.SENTINELS_UNREACHABLE, message)
    if topology.primary is None:
        message = f"{pods}; the Sentinels name no primary that is up (a failover is under way){stored}"
        return Finding(kind, False, Reason.NO_PRIMARY, message)
    replicas = f"{topology.in_sync} of {wanted - 1} replicas in sync"
    reason = Reason.REPLICAS_OUT_OF_SYNC if topology.in_sync < wanted - 1 else Reason.READY
    return Finding(kind, True, reason, f"primary {topology.primary}; {replicas}; {pods}{stored}")


def external_redis_ready(pods: ServerPods) -> Finding:
    """An external Redis is the server pods' to judge: Unknown until one of them is ready."""
    message = "server pods report their connection to the external Redis on /readyz"
    return Finding(ConditionType.REDIS_READY, None if pods.ready == 0 else True, Reason.EXTERNAL, message)


def redis_ready(
    spec: McpServerSpec,
    pods: ServerPods,
    redis: dict[str, Any] | None,
    persistence: Persistence | None,
    topology: Topology | None,
    redis_pods: PodHealth | None = None,
) -> Finding | None:
    """RedisReady, for the redis backend only."""
    if spec.sessions.backend != "redis":
        return None
    if spec.redis.mode == "managed":
        return managed_redis_ready(spec, redis, persistence, topology, redis_pods)
    return external_redis_ready(pods)


def session_affinity(spec: McpServerSpec, pods: ServerPods) -> Finding | None:
    """A warning for memory sessions on several replicas (none otherwise)."""
    several = pods.desired > 1 or spec.autoscaling.enabled
    if spec.sessions.backend != "memory" or not several:
        return None
    if effective_affinity(spec) == "ClientIP":
        message = (
            "memory sessions on several replicas: each client is kept on one replica by ClientIP "
            "affinity, so a restart of that replica loses its sessions; use sessions.backend: redis"
        )
        return Finding(ConditionType.SESSION_AFFINITY, True, Reason.CLIENT_IP_AFFINITY, message)
    message = (
        "memory sessions on several replicas without affinity: requests that reach another "
        "replica get 'Session not found'; use sessions.backend: redis or sessions.affinity: ClientIP"
    )
    return Finding(ConditionType.SESSION_AFFINITY, True, Reason.SESSIONS_WILL_BREAK, message)


def ready(pods: ServerPods, problems: Sequence[str], redis: Finding | None, health: PodHealth | None = None) -> Finding:
    """Every server pod rolled out and ready, and Redis not known to be down. A server pod that cannot start
    makes it False at once, naming the pod and the kubelet's reason (a rollout stuck on it would otherwise
    read as merely in progress); so does a Redis that cannot start."""
    counted = f"{pods.ready}/{pods.desired} pods ready"
    if health is not None and health.failing:
        return Finding(ConditionType.READY, False, Reason.POD_CANNOT_START, f"{counted}; {'; '.join(health.failing)}")
    if redis is not None and redis.reason == Reason.POD_CANNOT_START:
        return Finding(ConditionType.READY, False, Reason.POD_CANNOT_START, f"{counted}; Redis: {redis.message}")
    ok = not problems and pods.rolled_out and pods.ready >= pods.desired and (redis is None or redis.ok is not False)
    reason = Reason.READY if ok else Reason.NOT_READY
    return Finding(ConditionType.READY, ok, reason, counted)


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def condition_entry(
    kind: str, ok: bool | None, reason: str, message: str, previous: Mapping[str, Mapping[str, Any]], generation: int
) -> dict[str, Any]:
    """A condition in the Kubernetes shape; its lastTransitionTime kept from `previous` while its status holds."""
    status = "Unknown" if ok is None else ("True" if ok else "False")
    before = previous.get(kind)
    changed = before is None or before.get("status") != status
    return {
        "type": kind,
        "status": status,
        "reason": reason,
        "message": message,
        "lastTransitionTime": _now() if changed or not before else before.get("lastTransitionTime", _now()),
        "observedGeneration": generation,
    }


def _condition(finding: Finding, previous: Mapping[str, Mapping[str, Any]], generation: int) -> dict[str, Any]:
    return condition_entry(str(finding.type), finding.ok, str(finding.reason), finding.message, previous, generation)


def compute_status(
    *,
    owner: Owner,
    spec: McpServerSpec,
    generation: int,
    deployment: dict[str, Any] | None = None,
    redis: dict[str, Any] | None = None,
    previous_conditions: Sequence[dict[str, Any]] = (),
    problems: Sequence[str] = (),
    persistence: Persistence | None = None,
    topology: Topology | None = None,
    redis_pods: PodHealth | None = None,
    server_pod_health: PodHealth | None = None,
    route: Route | None = None,
) -> dict[str, Any]:
    """The status of the McpServer `owner`: `deployment` is its server Deployment, `redis` its managed Redis
    StatefulSet, `topology` what that Redis's Sentinels say (high availability), `redis_pods` what its pods
    say (data pods and Sentinels), `server_pod_health` what the server pods say, `problems` what is wrong with
    its spec."""
    pods = server_pods(spec, deployment)
    redis_finding = redis_ready(spec, pods, redis, persistence, topology, redis_pods)
    findings = [
        degraded(pods, problems, server_pod_health),
        available(pods),
        progressing(pods),
        redis_finding,
        session_affinity(spec, pods),
        ready(pods, problems, redis_finding, server_pod_health),
        exposed(spec, route),
    ]
    previous = {c["type"]: c for c in previous_conditions}
    selector = ",".join(f"{k}={v}" for k, v in owner.selector("server").items())
    # Verified is the probe's (`controller/verifier.py`): kept as the last probe left it.
    probed = [dict(c) for c in previous_conditions if c.get("type") == VERIFIED]
    return {
        "conditions": [_condition(f, previous, generation) for f in findings if f is not None] + probed,
        "observedGeneration": generation,
        "replicas": pods.replicas,
        "readyReplicas": pods.ready,
        "selector": selector,
        "url": service_url(owner, spec),
        "externalUrl": external_url(spec),
        "sessionBackend": spec.sessions.backend,
        "ready": f"{pods.ready}/{pods.desired}",
    }
