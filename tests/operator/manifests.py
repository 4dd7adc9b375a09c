"""What the builder tests share: an owner, generated values, and a spec rendered into manifests by kind/name."""

from __future__ import annotations

from typing import Any

from mcp_operator.api import McpServerSpec
from mcp_operator.desired import Generated, desired_state
from mcp_operator.names import Owner

OWNER = Owner("demo", "team-a", "uid-1")
KEYS = Generated(request_state_keys=["k" * 64], redis_password="p" * 64)


def spec(**fields: Any) -> McpServerSpec:
    return McpServerSpec.model_validate(fields)


def build(s: McpServerSpec, versions: dict[str, str] | None = None) -> dict[str, dict[str, Any]]:
    state = desired_state(OWNER, s, KEYS, versions or {})
    return {f"{m['kind']}/{m['metadata']['name']}": m for m in state.apply}


def env_of(deployment: dict[str, Any]) -> dict[str, Any]:
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container["env"]}
