"""The McpServer's status, computed from what its children report (pure)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from mcp_operator.api import McpServerSpec
from mcp_operator.names import Owner
from mcp_operator.networking import effective_affinity, service_url
from mcp_operator.redis import Persistence
from mcp_operator.redis_probe import Topology


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _condition(
    previous: dict[str, dict[str, Any]], kind: str, ok: bool | None, reason: str, message: str, generation: int
) -> dict[str, Any]:
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


def managed_redis_condition(
    spec: McpServerSpec, redis: dict[str, Any] | None, persistence: Persistence | None, topology: Topology | None
) -> tuple[bool, str, str]:
    """RedisReady of a managed Redis: (ok, reason, message); with high availability, the primary and how many
    replicas are in sync, as the Sentinels say."""
    ready = int(((redis or {}).get("status") or {}).get("readyReplicas") or 0)
    stored = f"; persistence {persistence.reason}" if persistence else ""
    if not spec.redis.high_availability.enabled:
        if ready >= 1:
            return True, "Ready", f"the managed Redis is ready{stored}"
        return False, "NotReady", f"the managed Redis is not ready yet{stored}"
    wanted = spec.redis.high_availability.replicas
    pods = f"{ready} of {wanted} Redis pods ready"
    if topology is None or topology.error is not None:
        why = topology.error if topology is not None and topology.error else "not asked"
        ok = ready >= 1
        return ok, "SentinelsUnreachable", f"{pods}; the operator could not ask the Sentinels ({why}){stored}"
    if topology.primary is None:
        return False, "NoPrimary", f"{pods}; the Sentinels name no primary that is up (a failover is under way){stored}"
    replicas = f"{topology.in_sync} of {wanted - 1} replicas in sync"
    degraded = topology.in_sync < wanted - 1
    reason = "ReplicasOutOfSync" if degraded else "Ready"
    return True, reason, f"primary {topology.primary}; {replicas}; {pods}{stored}"


def compute_status(
    owner: Owner,
    spec: McpServerSpec,
    generation: int,
    deployment: dict[str, Any] | None,
    redis: dict[str, Any] | None,
    previous_conditions: list[dict[str, Any]],
    problems: list[str],
    persistence: Persistence | None = None,
    topology: Topology | None = None,
) -> dict[str, Any]:
    """`redis` is the managed Redis StatefulSet; `topology`, what its Sentinels say (high availability)."""
    previous = {c["type"]: c for c in previous_conditions}
    d_status = (deployment or {}).get("status") or {}
    desired = ((deployment or {}).get("spec") or {}).get("replicas", spec.replicas)
    replicas = int(d_status.get("replicas") or 0)
    ready = int(d_status.get("readyReplicas") or 0)
    available = int(d_status.get("availableReplicas") or 0)
    updated = int(d_status.get("updatedReplicas") or 0)
    rolled_out = (
        deployment is not None
        and (d_status.get("observedGeneration") or 0) >= deployment["metadata"].get("generation", 0)
        and updated >= desired
        and replicas == desired
    )
    conditions: list[dict[str, Any]] = []
    cond = conditions.append
    if problems:
        cond(_condition(previous, "Degraded", True, "InvalidSpec", "; ".join(problems), generation))
    elif deployment is not None and desired and ready < desired and rolled_out:
        cond(_condition(previous, "Degraded", True, "PodsNotReady", f"{ready} of {desired} pods ready", generation))
    else:
        cond(_condition(previous, "Degraded", False, "AsExpected", "", generation))
    cond(
        _condition(
            previous,
            "Available",
            available > 0 or desired == 0,
            "MinimumReplicasAvailable" if available > 0 else "NoReplicasAvailable",
            f"{available} pods available",
            generation,
        )
    )
    cond(
        _condition(
            previous,
            "Progressing",
            not rolled_out,
            "RollingOut" if not rolled_out else "RolledOut",
            f"{updated} of {desired} pods updated",
            generation,
        )
    )
    redis_ok: bool | None = True
    if spec.sessions.backend == "redis":
        if spec.redis.mode == "managed":
            redis_ok, reason, message = managed_redis_condition(spec, redis, persistence, topology)
            cond(_condition(previous, "RedisReady", redis_ok, reason, message, generation))
        else:
            redis_ok = None if ready == 0 else True
            cond(
                _condition(
                    previous,
                    "RedisReady",
                    redis_ok,
                    "External",
                    "server pods report their connection to the external Redis on /readyz",
                    generation,
                )
            )
    several = desired > 1 or spec.autoscaling.enabled
    if spec.sessions.backend == "memory" and several:
        affinity = effective_affinity(spec)
        if affinity == "ClientIP":
            message = (
                "memory sessions on several replicas: each client is kept on one replica by ClientIP "
                "affinity, so a restart of that replica loses its sessions; use sessions.backend: redis"
            )
            cond(_condition(previous, "SessionAffinity", True, "ClientIPAffinity", message, generation))
        else:
            message = (
                "memory sessions on several replicas without affinity: requests that reach another "
                "replica get 'Session not found'; use sessions.backend: redis or sessions.affinity: ClientIP"
            )
            cond(_condition(previous, "SessionAffinity", True, "SessionsWillBreak", message, generation))
    is_ready = not problems and deployment is not None and rolled_out and ready >= desired and redis_ok is not False
    cond(
        _condition(
            previous,
            "Ready",
            is_ready,
            "Ready" if is_ready else "NotReady",
            f"{ready}/{desired} pods ready",
            generation,
        )
    )
    selector = ",".join(f"{k}={v}" for k, v in owner.selector("server").items())
    return {
        "conditions": conditions,
        "observedGeneration": generation,
        "replicas": replicas,
        "readyReplicas": ready,
        "selector": selector,
        "url": service_url(owner, spec),
        "sessionBackend": spec.sessions.backend,
        "ready": f"{ready}/{desired}",
    }
