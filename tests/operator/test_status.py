"""The McpServer status computed from its children (pure)."""

from __future__ import annotations

from typing import Any

from mcp_operator.api import McpServerSpec
from mcp_operator.names import Owner
from mcp_operator.status import compute_status

OWNER = Owner("demo", "ns", "uid")


def deployment(desired: int, ready: int, updated: int | None = None, generation: int = 2) -> dict[str, Any]:
    return {
        "metadata": {"generation": generation},
        "spec": {"replicas": desired},
        "status": {
            "observedGeneration": generation,
            "replicas": desired,
            "readyReplicas": ready,
            "availableReplicas": ready,
            "updatedReplicas": desired if updated is None else updated,
        },
    }


def conditions(status: dict[str, Any]) -> dict[str, tuple[str, str]]:
    return {c["type"]: (c["status"], c["reason"]) for c in status["conditions"]}


def test_ready_when_every_pod_is_ready() -> None:
    status = compute_status(owner=OWNER, spec=McpServerSpec(replicas=2), generation=3, deployment=deployment(2, 2))
    assert conditions(status)["Ready"] == ("True", "Ready")
    assert conditions(status)["Progressing"][0] == "False"
    assert status["ready"] == "2/2" and status["observedGeneration"] == 3
    assert status["selector"] == "app.kubernetes.io/instance=demo,app.kubernetes.io/component=server"
    assert status["url"] == "http://demo.ns.svc/mcp" and status["sessionBackend"] == "memory"


def test_rolling_out_is_progressing_not_ready() -> None:
    status = compute_status(
        owner=OWNER, spec=McpServerSpec(replicas=2), generation=3, deployment=deployment(2, 2, updated=1)
    )
    assert conditions(status)["Progressing"] == ("True", "RollingOut")
    assert conditions(status)["Ready"][0] == "False"


def test_managed_redis_not_ready_blocks_ready() -> None:
    spec = McpServerSpec.model_validate({"sessions": {"backend": "redis"}})
    redis = {"status": {"readyReplicas": 0}}
    status = compute_status(owner=OWNER, spec=spec, generation=1, deployment=deployment(1, 1), redis=redis)
    assert conditions(status)["RedisReady"] == ("False", "NotReady")
    assert conditions(status)["Ready"][0] == "False"


def test_memory_on_several_replicas_warns() -> None:
    status = compute_status(owner=OWNER, spec=McpServerSpec(replicas=3), generation=1, deployment=deployment(3, 3))
    assert conditions(status)["SessionAffinity"] == ("True", "ClientIPAffinity")
    spec = McpServerSpec.model_validate({"replicas": 3, "sessions": {"affinity": "None"}})
    status = compute_status(owner=OWNER, spec=spec, generation=1, deployment=deployment(3, 3))
    assert conditions(status)["SessionAffinity"] == ("True", "SessionsWillBreak")


def test_invalid_spec_is_degraded_with_the_message() -> None:
    status = compute_status(owner=OWNER, spec=McpServerSpec(), generation=1, problems=["spec.app: bad"])
    assert conditions(status)["Degraded"] == ("True", "InvalidSpec")
    assert "spec.app: bad" in next(c["message"] for c in status["conditions"] if c["type"] == "Degraded")


def test_transition_time_kept_while_status_holds() -> None:
    first = compute_status(owner=OWNER, spec=McpServerSpec(), generation=1, deployment=deployment(1, 1))
    ready = next(c for c in first["conditions"] if c["type"] == "Ready")
    ready["lastTransitionTime"] = "2020-01-01T00:00:00Z"
    again = compute_status(
        owner=OWNER,
        spec=McpServerSpec(),
        generation=1,
        deployment=deployment(1, 1),
        previous_conditions=first["conditions"],
    )
    assert next(c for c in again["conditions"] if c["type"] == "Ready")["lastTransitionTime"] == "2020-01-01T00:00:00Z"
