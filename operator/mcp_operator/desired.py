"""Everything one McpServer should own, as manifests: the pure core of the reconciler.

`desired_state` takes the spec and the values the operator generated once (the requestState keys, the Redis
password) and returns what to apply and what must not exist (e.g. the HPA after autoscaling is switched
off, the managed Redis after the backend goes back to memory).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from mcp_operator.api import McpServerSpec
from mcp_operator.exposure import HTTP_ROUTE_API, INGRESS_API, build_http_route, build_ingress
from mcp_operator.generated_secrets import build_redis_secret, build_request_state_secret
from mcp_operator.managed_redis import (
    Persistence,
    build_redis_service,
    build_redis_statefulset,
    decide_persistence,
)
from mcp_operator.names import Owner
from mcp_operator.networking import build_redis_network_policies, build_service
from mcp_operator.policies import build_hpa, build_pdb
from mcp_operator.redis_ha import build_ha_redis
from mcp_operator.workload import build_deployment


@dataclass(frozen=True)
class ChildRef:
    api_version: str
    kind: str
    name: str


@dataclass
class DesiredState:
    """What to apply, and which children must not exist."""

    apply: list[dict[str, Any]] = field(default_factory=list)
    absent: list[ChildRef] = field(default_factory=list)


@dataclass(frozen=True)
class Generated:
    """Values the operator made once and keeps in Secrets across reconciles."""

    request_state_keys: list[str]
    redis_password: str | None = None


def uses_managed_redis(spec: McpServerSpec) -> bool:
    return spec.sessions.backend == "redis" and spec.redis.mode == "managed"


def uses_ha_redis(spec: McpServerSpec) -> bool:
    return uses_managed_redis(spec) and spec.redis.high_availability.enabled


def _ha_children(owner: Owner) -> list[ChildRef]:
    return [
        ChildRef("v1", "ConfigMap", owner.redis_scripts),
        ChildRef("v1", "Service", owner.redis_headless),
        ChildRef("v1", "Service", owner.sentinel_headless),
        ChildRef("apps/v1", "StatefulSet", owner.sentinel),
        ChildRef("policy/v1", "PodDisruptionBudget", owner.redis),
        ChildRef("policy/v1", "PodDisruptionBudget", owner.sentinel),
        ChildRef("networking.k8s.io/v1", "NetworkPolicy", owner.sentinel),
    ]


def desired_state(
    owner: Owner,
    spec: McpServerSpec,
    generated: Generated,
    secret_versions: dict[str, str],
    persistence: Persistence | None = None,
) -> DesiredState:
    """`spec` is the effective spec (`config.effective_spec`: images and pull policy filled in); `persistence`,
    the decision from the cluster (`managed_redis.decide_persistence`), by default from the spec alone."""
    state = DesiredState()
    state.apply.append(build_request_state_secret(owner, generated.request_state_keys))
    if uses_managed_redis(spec):
        if generated.redis_password is None:
            raise ValueError("a managed Redis needs its generated password")
        persistence = persistence or decide_persistence(spec, None, default_class=False)
        state.apply += [build_redis_secret(owner, generated.redis_password), build_redis_service(owner)]
        if uses_ha_redis(spec):
            state.apply += build_ha_redis(owner, spec, persistence)
        else:
            state.apply.append(build_redis_statefulset(owner, spec, persistence))
            state.absent += _ha_children(owner)
        state.apply += build_redis_network_policies(owner, spec)
    else:
        state.absent += [
            ChildRef("apps/v1", "StatefulSet", owner.redis),
            ChildRef("v1", "Service", owner.redis),
            ChildRef("networking.k8s.io/v1", "NetworkPolicy", owner.redis),
            ChildRef("v1", "Secret", owner.redis_secret),
            *_ha_children(owner),
        ]
    state.apply += [build_deployment(owner, spec, secret_versions), build_service(owner, spec)]
    if spec.autoscaling.enabled:
        state.apply.append(build_hpa(owner, spec))
    else:
        state.absent.append(ChildRef("autoscaling/v2", "HorizontalPodAutoscaler", owner.server))
    route = ChildRef(HTTP_ROUTE_API, "HTTPRoute", owner.server)
    ingress = ChildRef(INGRESS_API, "Ingress", owner.server)
    if spec.expose is not None and spec.expose.gateway is not None:
        state.apply.append(build_http_route(owner, spec))
        state.absent.append(ingress)
    elif spec.expose is not None and spec.expose.ingress is not None:
        state.apply.append(build_ingress(owner, spec))
        state.absent.append(route)
    else:
        state.absent += [route, ingress]
    if spec.disruption_budget is not None:
        state.apply.append(build_pdb(owner, spec))
    else:
        state.absent.append(ChildRef("policy/v1", "PodDisruptionBudget", owner.server))
    return state
