"""The CustomResourceDefinition of McpServer, generated from the pydantic models in `api.py`.

`make crds` writes it to crds/mcpservers.yaml (and the chart's copy); CI fails when the checked-in file
differs from what the models generate.
"""

from __future__ import annotations

import copy
from typing import Any

import yaml

from mcp_operator.api import GROUP, KIND, PLURAL, SHORT_NAMES, SINGULAR, VERSION, McpServerSpec, McpServerStatus

# Cross-field rules the schema alone cannot say, checked by the API server (CEL).
SPEC_RULES = [
    {
        "rule": "!has(self.redis) || !has(self.redis.mode) || self.redis.mode != 'external' || has(self.redis.url) "
        "|| (has(self.redis.sentinels) && size(self.redis.sentinels) > 0)",
        "message": "redis.mode external needs redis.url, or redis.sentinels with redis.sentinelMasterName",
        "fieldPath": ".redis.url",
    },
    {
        "rule": "!has(self.redis) || "
        "((has(self.redis.sentinels) && size(self.redis.sentinels) > 0) == has(self.redis.sentinelMasterName))",
        "message": "redis.sentinels and redis.sentinelMasterName go together: set both or neither",
        "fieldPath": ".redis.sentinelMasterName",
    },
    {
        "rule": "!has(self.redis) || !has(self.redis.mode) || self.redis.mode != 'external' || "
        "!has(self.redis.highAvailability) || !has(self.redis.highAvailability.enabled) || "
        "!self.redis.highAvailability.enabled",
        "message": "redis.highAvailability is for the managed Redis; an external one gives redis.sentinels",
        "fieldPath": ".redis.highAvailability",
    },
    {
        "rule": "!has(self.autoscaling) || !self.autoscaling.enabled || "
        "self.autoscaling.minReplicas <= self.autoscaling.maxReplicas",
        "message": "autoscaling.minReplicas must not exceed autoscaling.maxReplicas",
        "fieldPath": ".autoscaling.minReplicas",
    },
    {
        "rule": "!has(self.disruptionBudget) || "
        "(has(self.disruptionBudget.minAvailable) != has(self.disruptionBudget.maxUnavailable))",
        "message": "disruptionBudget needs exactly one of minAvailable and maxUnavailable",
        "fieldPath": ".disruptionBudget",
    },
    {
        "rule": "!has(self.expose) || (has(self.expose.gateway) != has(self.expose.ingress))",
        "message": "expose needs exactly one of gateway (an HTTPRoute) and ingress (an Ingress)",
        "fieldPath": ".expose",
    },
    {
        "rule": "!has(self.auth) || !has(self.auth.oauth) || !self.auth.oauth.resource.contains('#')",
        "message": "auth.oauth.resource must not have a fragment (RFC 8707): the URL clients use, e.g. "
        "https://mcp.example.com/mcp",
        "fieldPath": ".auth.oauth.resource",
    },
    {
        "rule": "!has(self.redis) || !has(self.redis.url) || !has(self.redis.tls) || "
        "self.redis.tls == self.redis.url.startsWith('rediss://')",
        "message": "redis.tls must match the URL scheme (rediss:// for TLS)",
        "fieldPath": ".redis.tls",
    },
]

PRINTER_COLUMNS = [
    {"name": "Ready", "type": "string", "jsonPath": ".status.ready"},
    {"name": "Replicas", "type": "integer", "jsonPath": ".spec.replicas"},
    {"name": "Backend", "type": "string", "jsonPath": ".status.sessionBackend"},
    {"name": "Verified", "type": "string", "jsonPath": '.status.conditions[?(@.type=="Verified")].status'},
    {"name": "Tools", "type": "integer", "jsonPath": ".status.verified.tools", "priority": 1},
    {"name": "URL", "type": "string", "jsonPath": ".status.url"},
    {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
]


def _structural(node: Any, defs: dict[str, Any]) -> Any:
    """Turn pydantic's JSON schema into a Kubernetes structural schema (refs inlined, nullables folded)."""
    if isinstance(node, list):
        return [_structural(item, defs) for item in node]
    if not isinstance(node, dict):
        return node
    node = dict(node)
    optional = False
    if "anyOf" in node:
        everything = node.pop("anyOf")
        options = [o for o in everything if o.get("type") != "null"]
        optional = len(options) < len(everything)
        types = {o.get("type") for o in options}
        if types == {"integer", "string"}:
            node["x-kubernetes-int-or-string"] = True
        elif len(options) == 1:
            node = {**options[0], **node}
        else:
            raise ValueError(f"cannot express {options} in a structural schema")
        if node.get("default", 0) is None:
            del node["default"]
    if "$ref" in node:
        target = copy.deepcopy(defs[node.pop("$ref").rsplit("/", 1)[-1]])
        node = {**target, **node}
    node.pop("title", None)
    if isinstance(node.get("additionalProperties"), bool):
        del node["additionalProperties"]  # true/false are not structural; unknown fields are pruned anyway
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key == "properties":
            out[key] = {name: _structural(prop, defs) for name, prop in value.items()}
        elif key in ("items", "additionalProperties"):
            out[key] = _structural(value, defs)
        else:
            out[key] = value
    if (
        out.get("type") == "object"
        and "properties" in out
        and "default" not in out
        and not optional
        and not out.get("required")
    ):
        out["default"] = {}  # so the API server fills nested defaults when the object is left out
    return out


def schema_of(model: type[Any]) -> dict[str, Any]:
    raw = model.model_json_schema(by_alias=True)
    defs = raw.pop("$defs", {})
    schema: dict[str, Any] = _structural(raw, defs)
    schema.pop("default", None)
    return schema


def build_crd() -> dict[str, Any]:
    spec = schema_of(McpServerSpec)
    spec["x-kubernetes-validations"] = SPEC_RULES
    status = schema_of(McpServerStatus)
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{PLURAL}.{GROUP}", "labels": {"app.kubernetes.io/part-of": "mcp-fleet"}},
        "spec": {
            "group": GROUP,
            "scope": "Namespaced",
            "names": {
                "kind": KIND,
                "plural": PLURAL,
                "singular": SINGULAR,
                "shortNames": SHORT_NAMES,
                "listKind": f"{KIND}List",
            },
            "versions": [
                {
                    "name": VERSION,
                    "served": True,
                    "storage": True,
                    "subresources": {
                        "status": {},
                        "scale": {
                            "specReplicasPath": ".spec.replicas",
                            "statusReplicasPath": ".status.replicas",
                            "labelSelectorPath": ".status.selector",
                        },
                    },
                    "additionalPrinterColumns": PRINTER_COLUMNS,
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "description": "An MCP server run horizontally scaled by mcp-fleet.",
                            "required": ["spec"],
                            "properties": {
                                "apiVersion": {"type": "string", "description": "The API version."},
                                "kind": {"type": "string", "description": "McpServer."},
                                "metadata": {"type": "object"},
                                "spec": spec,
                                "status": status,
                            },
                        }
                    },
                }
            ],
        },
    }


def render_crd() -> str:
    header = "# Generated from operator/mcp_operator/api.py by `make crds`; do not edit.\n"
    body: str = yaml.safe_dump(build_crd(), sort_keys=False, width=120)
    return header + body


if __name__ == "__main__":
    print(render_crd(), end="")
