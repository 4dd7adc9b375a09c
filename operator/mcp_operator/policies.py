"""The HorizontalPodAutoscaler and PodDisruptionBudget of the server pods (pure)."""

from __future__ import annotations

from typing import Any

from mcp_operator.api import McpServerSpec
from mcp_operator.names import Owner


def build_hpa(owner: Owner, spec: McpServerSpec) -> dict[str, Any]:
    scaling = spec.autoscaling
    target = {"type": "Utilization", "averageUtilization": scaling.target_cpu_utilization_percentage}
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": owner.metadata(owner.server, "server"),
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": owner.server},
            "minReplicas": scaling.min_replicas,
            "maxReplicas": scaling.max_replicas,
            "metrics": [
                {
                    "type": "Resource",
                    "resource": {
                        "name": "cpu",
                        "target": target,
                    },
                }
            ],
        },
    }


def build_pdb(owner: Owner, spec: McpServerSpec) -> dict[str, Any]:
    budget = spec.disruption_budget
    assert budget is not None
    pdb_spec: dict[str, Any] = {"selector": {"matchLabels": owner.selector("server")}}
    if budget.min_available is not None:
        pdb_spec["minAvailable"] = budget.min_available
    else:
        pdb_spec["maxUnavailable"] = budget.max_unavailable
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": owner.metadata(owner.server, "server"),
        "spec": pdb_spec,
    }
