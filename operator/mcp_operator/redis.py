"""The managed Redis of an McpServer: a StatefulSet, its Service and its password Secret (pure)."""

from __future__ import annotations

import base64
from typing import Any

from mcp_operator.api import DEFAULT_REDIS_IMAGE, McpServerSpec
from mcp_operator.names import Owner

REDIS_USER = 65532


def build_redis_secret(owner: Owner, password: str) -> dict[str, Any]:
    """The password Secret; the operator generates the password once and keeps it."""
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "Opaque",
        "metadata": owner.metadata(owner.redis_secret, "redis"),
        "data": {"password": base64.b64encode(password.encode()).decode()},
    }


def build_redis_service(owner: Owner) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": owner.metadata(owner.redis, "redis"),
        "spec": {
            "selector": owner.selector("redis"),
            "ports": [{"name": "redis", "port": 6379, "targetPort": "redis", "protocol": "TCP"}],
        },
    }


def build_redis_statefulset(owner: Owner, spec: McpServerSpec) -> dict[str, Any]:
    persistence = spec.redis.persistence
    args = ["--requirepass", "$(REDIS_PASSWORD)", "--dir", "/data", "--protected-mode", "no", "--save", ""]
    args += ["--appendonly", "yes", "--appendfsync", "everysec"] if persistence.enabled else ["--appendonly", "no"]
    container: dict[str, Any] = {
        "name": "redis",
        "image": spec.redis.image or DEFAULT_REDIS_IMAGE,
        "imagePullPolicy": "IfNotPresent",
        "args": args,
        "env": [
            {"name": "REDIS_PASSWORD", "valueFrom": {"secretKeyRef": {"name": owner.redis_secret, "key": "password"}}}
        ],
        "ports": [{"name": "redis", "containerPort": 6379, "protocol": "TCP"}],
        "readinessProbe": {"tcpSocket": {"port": "redis"}, "periodSeconds": 5},
        "livenessProbe": {"tcpSocket": {"port": "redis"}, "periodSeconds": 10, "initialDelaySeconds": 5},
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "runAsNonRoot": True,
            "capabilities": {"drop": ["ALL"]},
        },
        "volumeMounts": [{"name": "data", "mountPath": "/data"}],
    }
    if spec.redis.resources:
        container["resources"] = spec.redis.resources
    statefulset: dict[str, Any] = {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": owner.metadata(owner.redis, "redis"),
        "spec": {
            "replicas": 1,
            "serviceName": owner.redis,
            "selector": {"matchLabels": owner.selector("redis")},
            "template": {
                "metadata": {"labels": owner.labels("redis")},
                "spec": {
                    "containers": [container],
                    "securityContext": {
                        "runAsNonRoot": True,
                        "runAsUser": REDIS_USER,
                        "runAsGroup": REDIS_USER,
                        "fsGroup": REDIS_USER,
                        "seccompProfile": {"type": "RuntimeDefault"},
                    },
                    "enableServiceLinks": False,
                },
            },
        },
    }
    if persistence.enabled:
        claim: dict[str, Any] = {
            "metadata": {"name": "data", "labels": owner.labels("redis")},
            "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": persistence.size}}},
        }
        if persistence.storage_class_name:
            claim["spec"]["storageClassName"] = persistence.storage_class_name
        statefulset["spec"]["volumeClaimTemplates"] = [claim]
    else:
        statefulset["spec"]["template"]["spec"]["volumes"] = [{"name": "data", "emptyDir": {}}]
    return statefulset
