"""A highly available managed Redis: a primary with replicas, watched by `defaults.SENTINELS` Sentinels (pure).

The data pods and the Sentinels are StatefulSets under headless Services, so each pod has a stable DNS name
that the Sentinels announce and the server pods connect to; the start scripts (`redis_scripts.py`) decide
at each start whether a pod is the primary or a replica of the one the Sentinels name.
"""

from __future__ import annotations

from typing import Any

from mcp_operator.api import McpServerSpec
from mcp_operator.defaults import (
    DATA_POD_GRACE_SECONDS,
    DOWN_AFTER_MS,
    FAILOVER_TIMEOUT_MS,
    MASTER_NAME,
    MIN_REPLICAS_MAX_LAG,
    MIN_REPLICAS_TO_WRITE,
    REDIS_PORT,
    REDIS_SHUTDOWN_SECONDS,
    ROLE_DISAGREEMENT_SECONDS,
    SENTINEL_PORT,
    SENTINEL_QUORUM,
    SENTINELS,
    STALE_PRIMARY_SECONDS,
    START_FAILOVER_SECONDS,
    SWITCHOVER_CATCH_UP_SECONDS,
    SWITCHOVER_DEMOTE_SECONDS,
    SWITCHOVER_FAILOVER_SECONDS,
    SWITCHOVER_PAUSE_MS,
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
DATA_DIR = "/data"  # the data pods' volume (a claim with persistence)
SENTINEL_DIR = "/sentinel"  # the Sentinels' config, rewritten by them (an emptyDir)
# How long a data pod may take to listen: the start script's longest wait, and time to load the data.
START_PROBE_SECONDS = STALE_PRIMARY_SECONDS + START_FAILOVER_SECONDS + 60


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


def data_addresses(owner: Owner, spec: McpServerSpec) -> list[str]:
    """host:port of each data pod; the first one is the set's first primary."""
    return [f"{owner.redis_pod_host(i)}:{REDIS_PORT}" for i in range(spec.redis.high_availability.replicas)]


def script_env(
    owner: Owner, spec: McpServerSpec, persistence: Persistence, component: Component
) -> list[dict[str, Any]]:
    """What the scripts read: every address and constant they need, so the scripts spell none of them (and the
    loopback tests run them with 127.0.0.1 and their own ports)."""
    headless = owner.redis_headless if component == "redis" else owner.sentinel_headless
    replicas = spec.redis.high_availability.replicas
    plain = {
        # This pod's own DNS name ($(POD_NAME) is expanded by the kubelet from the variable above it).
        "ME_HOST": f"$(POD_NAME).{headless}.{owner.namespace}.svc",
        "DATA_ADDRESSES": " ".join(data_addresses(owner, spec)),
        "SENTINEL_ADDRESSES": " ".join(sentinel_addresses(owner)),
        "MASTER_NAME": MASTER_NAME,
        "DATA_DIR": DATA_DIR,
        "SENTINEL_DIR": SENTINEL_DIR,
        "PERSIST": "yes" if persistence.enabled else "no",
        "REDIS_PORT": str(REDIS_PORT),
        "SENTINEL_PORT": str(SENTINEL_PORT),
        "SENTINEL_QUORUM": str(SENTINEL_QUORUM),
        "DOWN_AFTER_MS": str(DOWN_AFTER_MS),
        "FAILOVER_TIMEOUT_MS": str(FAILOVER_TIMEOUT_MS),
        "MIN_REPLICAS_TO_WRITE": str(MIN_REPLICAS_TO_WRITE if replicas >= 2 else 0),
        "MIN_REPLICAS_MAX_LAG": str(MIN_REPLICAS_MAX_LAG),
        "SHUTDOWN_TIMEOUT_SECONDS": str(REDIS_SHUTDOWN_SECONDS),
        "SWITCHOVER_PAUSE_MS": str(SWITCHOVER_PAUSE_MS),
        "SWITCHOVER_CATCH_UP_SECONDS": str(SWITCHOVER_CATCH_UP_SECONDS),
        "SWITCHOVER_FAILOVER_SECONDS": str(SWITCHOVER_FAILOVER_SECONDS),
        "SWITCHOVER_DEMOTE_SECONDS": str(SWITCHOVER_DEMOTE_SECONDS),
        "STALE_PRIMARY_SECONDS": str(STALE_PRIMARY_SECONDS),
        "START_FAILOVER_SECONDS": str(START_FAILOVER_SECONDS),
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
    container["env"] = script_env(owner, spec, persistence, "redis")
    container["readinessProbe"] = {"exec": {"command": _script("redis-ready.sh")}, "periodSeconds": 3}
    # redis-server listens only once the start script has decided (a stale primary waits for a failover first):
    # the liveness probe starts after that, not while the script waits.
    container["startupProbe"] = {
        "tcpSocket": {"port": "redis"},
        "periodSeconds": 5,
        "failureThreshold": START_PROBE_SECONDS // 5,
    }
    # Alive while its role agrees with the Sentinels' primary: a node that started as a primary (or a replica of
    # one) the Sentinels did not pick is restarted as their primary's replica once a failover had time to settle.
    container["livenessProbe"] = {
        "exec": {"command": _script("redis-live.sh")},
        "periodSeconds": 10,
        "timeoutSeconds": 8,
        "failureThreshold": ROLE_DISAGREEMENT_SECONDS // 10,
    }
    container["lifecycle"] = {"preStop": {"exec": {"command": _script("redis-pre-stop.sh")}}}
    pod = _pod_spec(owner, "redis", container, grace=DATA_POD_GRACE_SECONDS)
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
        "env": script_env(owner, spec, persistence, "sentinel"),
        "ports": [{"name": "sentinel", "containerPort": SENTINEL_PORT, "protocol": "TCP"}],
        "readinessProbe": {"exec": {"command": _script("sentinel-ready.sh")}, "periodSeconds": 5},
        "livenessProbe": {"tcpSocket": {"port": "sentinel"}, "periodSeconds": 10, "initialDelaySeconds": 60},
        "securityContext": CONTAINER_SECURITY,
        "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}, "limits": {"memory": "64Mi"}},
        "volumeMounts": [{"name": "sentinel", "mountPath": SENTINEL_DIR}],
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
