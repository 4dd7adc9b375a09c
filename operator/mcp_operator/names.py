"""Names and labels of what the operator makes for one McpServer."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from mcp_operator.api import GROUP, KIND, VERSION

Component = Literal["server", "redis", "sentinel"]
MANAGED_BY = "mcp-fleet"


@dataclass(frozen=True)
class Owner:
    """The McpServer that owns the children: its name, namespace and uid."""

    name: str
    namespace: str
    uid: str

    def reference(self) -> dict[str, Any]:
        return {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": KIND,
            "name": self.name,
            "uid": self.uid,
            "controller": True,
            "blockOwnerDeletion": True,
        }

    def labels(self, component: Component) -> dict[str, str]:
        return {
            "app.kubernetes.io/name": "mcp-server" if component == "server" else "redis",
            "app.kubernetes.io/instance": self.name,
            "app.kubernetes.io/component": component,
            "app.kubernetes.io/managed-by": MANAGED_BY,
        }

    def selector(self, component: Component) -> dict[str, str]:
        labels = self.labels(component)
        return {k: labels[k] for k in ("app.kubernetes.io/instance", "app.kubernetes.io/component")}

    def metadata(self, name: str, component: Component, annotations: dict[str, str] | None = None) -> dict[str, Any]:
        meta: dict[str, Any] = {
            "name": name,
            "namespace": self.namespace,
            "labels": self.labels(component),
            "ownerReferences": [self.reference()],
        }
        if annotations:
            meta["annotations"] = dict(annotations)
        return meta

    # Children's names
    @property
    def server(self) -> str:
        return self.name

    @property
    def redis(self) -> str:
        return f"{self.name}-redis"

    @property
    def redis_headless(self) -> str:
        """The headless Service that gives each Redis pod of a highly available set a stable DNS name."""
        return f"{self.name}-redis-hl"

    @property
    def sentinel(self) -> str:
        return f"{self.name}-redis-sentinel"

    @property
    def sentinel_headless(self) -> str:
        return f"{self.name}-redis-sentinel-hl"

    @property
    def redis_scripts(self) -> str:
        return f"{self.name}-redis-scripts"

    def redis_pod_host(self, ordinal: int) -> str:
        """A data pod of a highly available Redis, by its DNS name under the headless Service."""
        return f"{self.redis}-{ordinal}.{self.redis_headless}.{self.namespace}.svc"

    def sentinel_pod_host(self, ordinal: int) -> str:
        return f"{self.sentinel}-{ordinal}.{self.sentinel_headless}.{self.namespace}.svc"

    @property
    def redis_secret(self) -> str:
        return f"{self.name}-redis-auth"

    @property
    def request_state_secret(self) -> str:
        return f"{self.name}-request-state"

    def service_host(self) -> str:
        return f"{self.name}.{self.namespace}.svc"
