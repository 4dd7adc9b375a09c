"""The Service in front of the server pods, and the NetworkPolicy that keeps Redis to them (pure)."""

from __future__ import annotations

from typing import Any

from mcp_operator.api import McpServerSpec
from mcp_operator.defaults import REDIS_PORT, SENTINEL_PORT
from mcp_operator.names import Component, Owner

MAX_AFFINITY_SECONDS = 86_400  # the most Kubernetes accepts for ClientIP affinity


def effective_affinity(spec: McpServerSpec) -> str:
    """sessions.affinity with Auto resolved: ClientIP when memory sessions run on several replicas."""
    if spec.sessions.affinity != "Auto":
        return spec.sessions.affinity
    several = spec.replicas > 1 or (spec.autoscaling.enabled and spec.autoscaling.max_replicas > 1)
    return "ClientIP" if spec.sessions.backend == "memory" and several else "None"


def build_service(owner: Owner, spec: McpServerSpec) -> dict[str, Any]:
    service_spec: dict[str, Any] = {
        "type": spec.service.type,
        "selector": owner.selector("server"),
        "ports": [{"name": "http", "port": spec.service.port, "targetPort": "http", "protocol": "TCP"}],
        "sessionAffinity": effective_affinity(spec),
    }
    if service_spec["sessionAffinity"] == "ClientIP":
        timeout = min(spec.sessions.ttl_seconds, MAX_AFFINITY_SECONDS)
        service_spec["sessionAffinityConfig"] = {"clientIP": {"timeoutSeconds": timeout}}
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": owner.metadata(owner.server, "server", spec.service.annotations),
        "spec": service_spec,
    }


def service_url(owner: Owner, spec: McpServerSpec) -> str:
    port = "" if spec.service.port == 80 else f":{spec.service.port}"
    return f"http://{owner.service_host()}{port}{spec.path}"


OPERATOR_POD = {"app.kubernetes.io/name": "mcp-fleet"}  # the chart's operator pods (for RedisReady's probe)


def _policy(owner: Owner, component: Component, port: int, sources: list[dict[str, Any]]) -> dict[str, Any]:
    name = owner.redis if component == "redis" else owner.sentinel
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": owner.metadata(name, "redis" if component == "redis" else "sentinel"),
        "spec": {
            "podSelector": {"matchLabels": owner.selector(component)},
            "policyTypes": ["Ingress"],
            "ingress": [{"from": sources, "ports": [{"protocol": "TCP", "port": port}]}],
        },
    }


def build_redis_network_policies(owner: Owner, spec: McpServerSpec) -> list[dict[str, Any]]:
    """Only this McpServer's server pods reach its managed Redis; with high availability, the Redis pods and
    the Sentinels also reach each other, and the operator asks the Sentinels for the primary."""
    server = {"podSelector": {"matchLabels": owner.selector("server")}}
    if not spec.redis.high_availability.enabled:
        return [_policy(owner, "redis", REDIS_PORT, [server])]
    redis = {"podSelector": {"matchLabels": owner.selector("redis")}}
    sentinel = {"podSelector": {"matchLabels": owner.selector("sentinel")}}
    operator = {"namespaceSelector": {}, "podSelector": {"matchLabels": OPERATOR_POD}}
    return [
        _policy(owner, "redis", REDIS_PORT, [server, redis, sentinel]),
        _policy(owner, "sentinel", SENTINEL_PORT, [server, redis, sentinel, operator]),
    ]
