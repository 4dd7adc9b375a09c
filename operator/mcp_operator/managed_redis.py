"""The managed Redis of an McpServer: one Redis pod in a StatefulSet and its Service, the persistence decision,
and the parts a highly available Redis (`redis_ha.py`) shares with it (pure)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mcp_operator.api import McpServerSpec
from mcp_operator.defaults import REDIS_PORT
from mcp_operator.names import Component, Owner

REDIS_USER = 65532


def build_redis_service(owner: Owner) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": owner.metadata(owner.redis, "redis"),
        "spec": {
            "selector": owner.selector("redis"),
            "ports": [{"name": "redis", "port": REDIS_PORT, "targetPort": "redis", "protocol": "TCP"}],
        },
    }


@dataclass(frozen=True)
class Persistence:
    """Whether the managed Redis keeps its data on a claim, and the reason, for the RedisReady condition."""

    enabled: bool
    reason: str


def decide_persistence(spec: McpServerSpec, existing: dict[str, Any] | None, default_class: bool) -> Persistence:
    """spec.redis.persistence.enabled, or when empty: what the existing StatefulSet has (a StatefulSet's claims
    cannot change), else on when the cluster has a default StorageClass or the spec names a class."""
    wanted = spec.redis.persistence
    size = wanted.size
    on = f"on: the append-only file (appendfsync everysec) on a {size} PersistentVolumeClaim per Redis pod"
    if wanted.enabled is True:
        return Persistence(True, f"{on} (spec.redis.persistence.enabled)")
    if wanted.enabled is False:
        return Persistence(
            False, "off: spec.redis.persistence.enabled is false; a restart of every Redis pod loses every session"
        )
    if existing is not None:
        if (existing.get("spec") or {}).get("volumeClaimTemplates"):
            return Persistence(True, f"{on} (decided when the Redis StatefulSet was made)")
        return Persistence(
            False,
            "off: decided when the Redis StatefulSet was made, when the cluster had no default StorageClass "
            "(a StatefulSet's claims cannot change; set spec.redis.persistence.enabled to choose)",
        )
    if wanted.storage_class_name:
        return Persistence(True, f"{on} (storage class {wanted.storage_class_name})")
    if default_class:
        return Persistence(True, f"{on} (the cluster's default StorageClass)")
    return Persistence(
        False,
        "off: the cluster has no default StorageClass, so a restart of every Redis pod loses every session; "
        "set spec.redis.persistence.storageClassName, or mark a StorageClass as the default",
    )


def redis_container(spec: McpServerSpec, owner: Owner, args: list[str]) -> dict[str, Any]:
    """The Redis container every managed Redis pod runs (arguments and probes set by the caller); `spec` is the
    effective spec (`config.effective_spec`), which names the image and the pull policy."""
    container: dict[str, Any] = {
        "name": "redis",
        "image": spec.redis.image,
        "imagePullPolicy": spec.image_pull_policy,
        "args": args,
        "env": [password_env(owner)],
        "ports": [{"name": "redis", "containerPort": REDIS_PORT, "protocol": "TCP"}],
        "readinessProbe": {"tcpSocket": {"port": "redis"}, "periodSeconds": 5},
        "livenessProbe": {"tcpSocket": {"port": "redis"}, "periodSeconds": 10, "initialDelaySeconds": 5},
        "securityContext": CONTAINER_SECURITY,
        "volumeMounts": [{"name": "data", "mountPath": "/data"}],
    }
    if spec.redis.resources:
        container["resources"] = spec.redis.resources
    return container


CONTAINER_SECURITY = {
    "allowPrivilegeEscalation": False,
    "readOnlyRootFilesystem": True,
    "runAsNonRoot": True,
    "capabilities": {"drop": ["ALL"]},
}
POD_SECURITY = {
    "runAsNonRoot": True,
    "runAsUser": REDIS_USER,
    "runAsGroup": REDIS_USER,
    "fsGroup": REDIS_USER,
    "seccompProfile": {"type": "RuntimeDefault"},
}


def password_env(owner: Owner) -> dict[str, Any]:
    return {"name": "REDIS_PASSWORD", "valueFrom": {"secretKeyRef": {"name": owner.redis_secret, "key": "password"}}}


def statefulset(
    owner: Owner, name: str, component: Component, replicas: int, service: str, pod_spec: dict[str, Any]
) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": owner.metadata(name, component),
        "spec": {
            "replicas": replicas,
            "serviceName": service,
            "selector": {"matchLabels": owner.selector(component)},
            "template": {"metadata": {"labels": owner.labels(component)}, "spec": pod_spec},
        },
    }


def add_data_volume(owner: Owner, spec: McpServerSpec, sts: dict[str, Any], persistence: Persistence) -> None:
    """The pods' /data: a claim per pod when persistent, else an emptyDir."""
    if persistence.enabled:
        wanted = spec.redis.persistence
        claim: dict[str, Any] = {
            "metadata": {"name": "data", "labels": owner.labels("redis")},
            "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": wanted.size}}},
        }
        if wanted.storage_class_name:
            claim["spec"]["storageClassName"] = wanted.storage_class_name
        sts["spec"]["volumeClaimTemplates"] = [claim]
    else:
        pod = sts["spec"]["template"]["spec"]
        pod["volumes"] = [*pod.get("volumes", []), {"name": "data", "emptyDir": {}}]


def build_redis_statefulset(owner: Owner, spec: McpServerSpec, persistence: Persistence) -> dict[str, Any]:
    """One Redis pod (spec.redis.highAvailability off)."""
    args = ["--requirepass", "$(REDIS_PASSWORD)", "--dir", "/data", "--protected-mode", "no", "--save", ""]
    args += ["--appendonly", "yes", "--appendfsync", "everysec"] if persistence.enabled else ["--appendonly", "no"]
    pod = {
        "containers": [redis_container(spec, owner, args)],
        "securityContext": POD_SECURITY,
        "enableServiceLinks": False,
    }
    sts = statefulset(owner, owner.redis, "redis", 1, owner.redis, pod)
    add_data_volume(owner, spec, sts, persistence)
    return sts
