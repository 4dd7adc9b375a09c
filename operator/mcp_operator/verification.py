"""The `Verified` condition: what a probe of the fleet found, and when the next probe is due (pure).

The probe itself (`mcp_probe.py`) speaks MCP; this module turns its result into the condition and the
status's `verified` summary, and decides when to probe: once a rollout has settled (Ready, for the
McpServer's current generation), and then every `PERIOD_SECONDS` with jitter, so that many McpServers do not
probe in step.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

VERIFIED = "Verified"
PERIOD_SECONDS = 300.0
JITTER = 0.2  # each period is PERIOD_SECONDS times a factor in [1 - JITTER, 1 + JITTER]
SETTLE_SECONDS = 3.0  # after Ready, before the first probe (endpoints reach every kube-proxy)


class Step(StrEnum):
    """The probe's steps, in order."""

    AUTHORIZE = "authorize"
    DISCOVER = "discover"
    TOOLS = "tools/list"
    RESOURCES = "resources/list"
    PROMPTS = "prompts/list"
    INITIALIZE = "initialize"
    CROSS_REPLICA = "cross-replica"
    DELETE = "delete"


class VerifiedReason(StrEnum):
    ANSWERS_ACROSS_REPLICAS = "AnswersAcrossReplicas"
    PROBE_FAILED = "ProbeFailed"
    NO_READY_PODS = "NoReadyPods"
    NO_PROBE_CREDENTIALS = "NoProbeCredentials"


@dataclass
class ProbeResult:
    """What one probe found; `failed_step` is None when every step passed."""

    step: Step = Step.DISCOVER
    unauthenticated: str | None = None  # the servers want an access token and the probe has none: why
    modern_version: str | None = None
    handshake_version: str | None = None
    server_name: str | None = None
    server_version: str | None = None
    tools: int | None = None
    resources: int | None = None
    prompts: int | None = None
    served_by: list[str] = field(default_factory=list)
    failed_step: Step | None = None
    failed_pod: str | None = None
    error: str | None = None

    @property
    def failed(self) -> bool:
        return self.failed_step is not None

    def fail(self, step: Step, pod: str | None, error: str) -> None:
        if self.failed_step is None:
            self.failed_step, self.failed_pod, self.error = step, pod, error


@dataclass(frozen=True)
class Verdict:
    """The condition's status, reason and message."""

    ok: bool
    reason: VerifiedReason
    message: str


def verdict(result: ProbeResult, pods: int) -> Verdict:
    """The `Verified` condition from a probe of a fleet of `pods` ready server pods."""
    if pods == 0:
        return Verdict(False, VerifiedReason.NO_READY_PODS, "no ready server pod to probe")
    if result.unauthenticated is not None and not result.failed:
        return Verdict(False, VerifiedReason.NO_PROBE_CREDENTIALS, result.unauthenticated)
    if result.failed:
        where = f" on pod {result.failed_pod}" if result.failed_pod else ""
        return Verdict(False, VerifiedReason.PROBE_FAILED, f"step {result.failed_step}{where} failed: {result.error}")
    server = " ".join(p for p in (result.server_name, result.server_version) if p) or "an anonymous server"
    counts = [f"{result.tools} tools"]
    counts += [f"{result.resources} resources"] if result.resources is not None else []
    counts += [f"{result.prompts} prompts"] if result.prompts is not None else []
    message = (
        f"{server}: {result.modern_version} discover and {', '.join(counts)}; {result.handshake_version} session "
        f"served by each of {len(result.served_by)} pods ({', '.join(result.served_by)}), then deleted"
    )
    return Verdict(True, VerifiedReason.ANSWERS_ACROSS_REPLICAS, message)


def summary(result: ProbeResult) -> dict[str, Any]:
    """The status's `verified` field (what `kubectl get mcps` shows of the last probe that passed)."""
    versions = [v for v in (result.modern_version, result.handshake_version) if v]
    found: dict[str, Any] = {
        "protocolVersions": versions,
        "serverName": result.server_name or "",
        "serverVersion": result.server_version or "",
        "tools": result.tools or 0,
        "pods": len(result.served_by),
    }
    if result.resources is not None:
        found["resources"] = result.resources
    if result.prompts is not None:
        found["prompts"] = result.prompts
    return found


def verified_condition(status: Mapping[str, Any] | None) -> Mapping[str, Any] | None:
    for condition in (status or {}).get("conditions") or []:
        if condition.get("type") == VERIFIED:
            return dict(condition)
    return None


def settled(status: Mapping[str, Any], generation: int) -> bool:
    """Whether the McpServer's rollout has settled: Ready for its current generation."""
    return any(
        c.get("type") == "Ready" and c.get("status") == "True" and c.get("observedGeneration") == generation
        for c in status.get("conditions") or []
    )


def first_probe_due(status: Mapping[str, Any], generation: int) -> bool:
    """Whether a settled McpServer has no verdict for its current generation yet."""
    if not settled(status, generation):
        return False
    found = verified_condition(status)
    return found is None or found.get("observedGeneration") != generation


def next_period(rng: random.Random | None = None) -> float:
    """Seconds to the next periodic probe, jittered."""
    factor = (rng or random).uniform(1 - JITTER, 1 + JITTER)
    return PERIOD_SECONDS * factor
