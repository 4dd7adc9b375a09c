"""A highly available managed Redis: a primary with replicas, watched by `defaults.SENTINELS` Sentinels (pure).

The data pods and the Sentinels are StatefulSets under headless Services, so each pod has a stable DNS name
that the Sentinels announce and the server pods connect to; the start scripts (`redis_scripts.py`) decide
at each start whether a pod is the primary or a replica of the one the Sentinels name.
"""

from __future__ import annotations

from typing import Any

from mcp_operator.api import McpServerSpec
from mcp_operator.defaults import (
    DOWN_AFTER_MS,
    FAILOVER_TIMEOUT_MS,
    MASTER_NAME,
    REDIS_PORT,
    SENTINEL_PORT,
    SENTINEL_QUORUM,
    SENTINELS,
)
from mcp_operator.managed_redis import (
    CONTAINER_SECURITY,
    POD_SECURITY,
    Persistence,
    add_data_volume,
    password_env,
    redis_container,
    statefulset,
)
from mcp_operator.names import Component, Owner
from mcp_operator.redis_scripts import SCRIPTS, SCRIPTS_VERSION

SCRIPTS_DIR = "/scripts"


def sentinel_addresses(owner: Owner) -> list[str]:
    """host:port of each Sentinel, as the server pods are told them."""
    return [f"{owner.sentinel_pod_host(i)}:{SENTINEL_PORT}" for i in range(SENTINELS)]


def build_scripts_config_map(owner: Owner) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": owner.metadata(owner.redis_scripts, "redis"),
        "data": dict(SCRIPTS),
    }


def build_headless_service(owner: Owner, name: str, component: Component, port: int) -> dict[str, Any]:
    """Gives each pod a DNS name, published before the pod is ready (a replica must find a primary to be)."""
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": owner.metadata(name, component),
        "spec": {
            "clusterIP": "None",
            "publishNotReadyAddresses": True,
            "selector": owner.selector(component),
            "ports": [{"name": component, "port": port, "targetPort": port, "protocol": "TCP"}],
        },
    }


def _anti_affinity(owner: Owner, component: Component) -> dict[str, Any]:
    """Prefer one pod of the set per node, then per zone: losing one node loses at most one of them."""
    terms = [
        {
            "weight": weight,
            "podAffinityTerm": {
                "labelSelector": {"matchLabels": owner.selector(component)},
                "topologyKey": key,
            },
        }
        for weight, key in ((100, "kubernetes.io/hostname"), (50, "topology.kubernetes.io/zone"))
    ]
    return {"podAntiAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": terms}}


def _script_env(owner: Owner, spec: McpServerSpec, persistence: Persistence) -> list[dict[str, Any]]:
    """What the scripts read: every name and constant they need, so the scripts spell none of them."""
    plain = {
        "NAMESPACE": owner.namespace,
        "STATEFULSET": owner.redis,
        "HEADLESS": owner.redis_headless,
        "SENTINEL": owner.sentinel,
        "SENTINEL_HEADLESS": owner.sentinel_headless,
        "MASTER_NAME": MASTER_NAME,
        "DATA_REPLICAS": str(spec.redis.high_availability.replicas),
        "PERSIST": "yes" if persistence.enabled else "no",
        "DOWN_AFTER_MS": str(DOWN_AFTER_MS),
        "FAILOVER_TIMEOUT_MS": str(FAILOVER_TIMEOUT_MS),
        "REDIS_PORT": str(REDIS_PORT),
        "SENTINEL_PORT": str(SENTINEL_PORT),
        "SENTINELS": str(SENTINELS),
        "SENTINEL_QUORUM": str(SENTINEL_QUORUM),
    }
    return [
        password_env(owner),
        {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
        *({"name": k, "value": v} for k, v in plain.items()),
    ]


def _script(name: str) -> list[str]:
    return ["/bin/sh", f"{SCRIPTS_DIR}/{name}"]


def _pod_spec(owner: Owner, component: Component, container: dict[str, Any], grace: int) -> dict[str, Any]:
    container["volumeMounts"] = [
        *container.get("volumeMounts", []),
        {"name": "scripts", "mountPath": SCRIPTS_DIR, "readOnly": True},
    ]
    return {
        "containers": [container],
        "securityContext": POD_SECURITY,
        "enableServiceLinks": False,
        "affinity": _anti_affinity(owner, component),
        "terminationGracePeriodSeconds": grace,
        "volumes": [{"name": "scripts", "configMap": {"name": owner.redis_scripts}}],
    }


def build_data_statefulset(owner: Owner, spec: McpServerSpec, persistence: Persistence) -> dict[str, Any]:
    """The primary and its replicas; which is which is the Sentinels' to say."""
    container = redis_container(spec, owner, [])
    container.pop("args")
    container["command"] = _script("redis-start.sh")
    container["env"] = _script_env(owner, spec, persistence)
    container["readinessProbe"] = {"exec": {"command": _script("redis-ready.sh")}, "periodSeconds": 3}
    container["lifecycle"] = {"preStop": {"exec": {"command": _script("redis-pre-stop.sh")}}}
    pod = _pod_spec(owner, "redis", container, grace=45)
    replicas = spec.redis.high_availability.replicas
    sts = statefulset(owner, owner.redis, "redis", replicas, owner.redis_headless, pod)
    # Parallel: a set whose pods all went away comes back at once (pod 0 need not be ready before pod 1).
    sts["spec"]["podManagementPolicy"] = "Parallel"
    sts["spec"]["template"]["metadata"]["annotations"] = {"mcpfleet.dev/scripts": SCRIPTS_VERSION}
    add_data_volume(owner, spec, sts, persistence)
    return sts


def build_sentinel_statefulset(owner: Owner, spec: McpServerSpec, persistence: Persistence) -> dict[str, Any]:
    """The Sentinels, in the managed Redis's image (`spec` is the effective spec, which names it)."""
    container: dict[str, Any] = {
        "name": "sentinel",
        "image": spec.redis.image,
        "imagePullPolicy": spec.image_pull_policy,
        "command": _script("sentinel-start.sh"),
        "env": _script_env(owner, spec, persistence),
        "ports": [{"name": "sentinel", "containerPort": SENTINEL_PORT, "protocol": "TCP"}],
        "readinessProbe": {"exec": {"command": _script("sentinel-ready.sh")}, "periodSeconds": 5},
        "livenessProbe": {"tcpSocket": {"port": "sentinel"}, "periodSeconds": 10, "initialDelaySeconds": 60},
        "securityContext": CONTAINER_SECURITY,
        "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}, "limits": {"memory": "64Mi"}},
        "volumeMounts": [{"name": "sentinel", "mountPath": "/sentinel"}],
    }
    pod = _pod_spec(owner, "sentinel", container, grace=10)
    pod["volumes"].append({"name": "sentinel", "emptyDir": {}})
    sts = statefulset(owner, owner.sentinel, "sentinel", SENTINELS, owner.sentinel_headless, pod)
    sts["spec"]["podManagementPolicy"] = "Parallel"
    sts["spec"]["template"]["metadata"]["annotations"] = {"mcpfleet.dev/scripts": SCRIPTS_VERSION}
    return sts


def build_redis_pdbs(owner: Owner) -> list[dict[str, Any]]:
    """At most one data pod and one Sentinel down at a time through voluntary disruptions (drains)."""
    sets: list[tuple[str, Component]] = [(owner.redis, "redis"), (owner.sentinel, "sentinel")]
    return [
        {
            "apiVersion": "policy/v1",
            "kind": "PodDisruptionBudget",
            "metadata": owner.metadata(name, component),
            "spec": {"maxUnavailable": 1, "selector": {"matchLabels": owner.selector(component)}},
        }
        for name, component in sets
    ]


def build_ha_redis(owner: Owner, spec: McpServerSpec, persistence: Persistence) -> list[dict[str, Any]]:
    """Everything a highly available managed Redis is made of (beside its Secret and NetworkPolicy)."""
    return [
        build_scripts_config_map(owner),
        build_headless_service(owner, owner.redis_headless, "redis", REDIS_PORT),
        build_headless_service(owner, owner.sentinel_headless, "sentinel", SENTINEL_PORT),
        build_data_statefulset(owner, spec, persistence),
        build_sentinel_statefulset(owner, spec, persistence),
        *build_redis_pdbs(owner),
    ]
