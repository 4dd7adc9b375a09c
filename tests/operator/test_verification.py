"""The Verified probe: against real mcp-runtime processes driven by the official client (a fleet on one
Redis, and one whose replicas do not share sessions), and its decisions and messages (pure)."""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest

from mcp_operator.mcp_probe import OAuthProbe, Target, probe
from mcp_operator.verification import (
    JITTER,
    PERIOD_SECONDS,
    ProbeResult,
    Step,
    VerifiedReason,
    first_probe_due,
    next_period,
    summary,
    verdict,
)
from tests.support.oidc import running_provider
from tests.support.procs import RuntimeProcess, spawn, wait_healthy
from tests.support.redis_server import RedisServer, redis_env, replicas, start_redis


def target_of(
    service: RuntimeProcess, pods: list[RuntimeProcess], token: str | None = None, oauth: OAuthProbe | None = None
) -> Target:
    """The first process stands for the Service; each process is a pod."""
    return Target(
        service_ip="127.0.0.1",
        port=service.port,
        path="/mcp",
        host=f"127.0.0.1:{service.port}",
        pods=[(f"pod-{p.port}", "127.0.0.1", p.port) for p in pods],
        token=token,
        oauth=oauth,
        timeout=15,
    )


@pytest.fixture
def redis(tmp_path: Path) -> Iterator[RedisServer]:
    server = start_redis(tmp_path / "redis")
    yield server
    server.stop()


def test_a_fleet_on_one_redis_answers_across_replicas(tmp_path: Path, redis: RedisServer) -> None:
    with replicas(tmp_path, redis_env(redis), 3) as procs:
        result = anyio.run(probe, target_of(procs[0], procs))
        assert not result.failed, result
        assert result.served_by == [f"pod-{p.port}" for p in procs]
        assert result.modern_version == "2026-07-28" and result.handshake_version == "2025-11-25"
        assert result.tools and result.tools > 0
        found = verdict(result, 3)
        assert found.ok and "served by each of 3 pods" in found.message
        # The probe's session was deleted: no session is left open on the store.
        sessions = redis.client().zcard("mcp:sessions")
        assert sessions == 0, sessions


def test_a_replica_on_another_redis_fails_the_cross_replica_step(tmp_path: Path, redis: RedisServer) -> None:
    other = start_redis(tmp_path / "other")
    try:
        with replicas(tmp_path, redis_env(redis), 2) as procs:
            stray = spawn(tmp_path, redis_env(other))
            try:
                wait_healthy(stray)
                result = anyio.run(probe, target_of(procs[0], [*procs, stray]))
            finally:
                stray.stop()
    finally:
        other.stop()
    assert result.failed_step == Step.CROSS_REPLICA and result.failed_pod == f"pod-{stray.port}"
    found = verdict(result, 3)
    assert not found.ok and found.reason == "ProbeFailed"
    assert found.message.startswith(f"step cross-replica on pod pod-{stray.port} failed: HTTP 404")


def test_a_stray_pod_that_opened_the_session_is_the_one_named(tmp_path: Path, redis: RedisServer) -> None:
    """The Service sent the probe's initialize to the pod whose sessions are its own: the two pods on the shared
    Redis refuse the session, and the verdict names the stray pod, not them."""
    with replicas(tmp_path, redis_env(redis), 2) as procs:
        stray = spawn(tmp_path)
        try:
            wait_healthy(stray)
            result = anyio.run(probe, target_of(stray, [*procs, stray]))
        finally:
            stray.stop()
    assert (result.failed_step, result.failed_pod) == (Step.CROSS_REPLICA, f"pod-{stray.port}")
    message = verdict(result, 3).message
    assert message.startswith(f"step cross-replica on pod pod-{stray.port} failed: HTTP 404"), message
    assert all(f"pod-{p.port}" in message for p in procs), message


def test_memory_replicas_fail_the_cross_replica_step(tmp_path: Path) -> None:
    procs = [spawn(tmp_path), spawn(tmp_path)]
    try:
        for proc in procs:
            wait_healthy(proc)
        result = anyio.run(probe, target_of(procs[0], procs))
    finally:
        for proc in procs:
            proc.stop()
    assert result.served_by == [f"pod-{procs[0].port}"]
    assert (result.failed_step, result.failed_pod) == (Step.CROSS_REPLICA, f"pod-{procs[1].port}")


def test_an_app_whose_tool_listing_raises_fails_that_step(tmp_path: Path) -> None:
    proc = spawn(tmp_path, app="mcp_runtime.examples.faulty:server")
    try:
        wait_healthy(proc)
        result = anyio.run(probe, target_of(proc, [proc]))
    finally:
        proc.stop()
    assert result.failed_step == Step.TOOLS, result
    assert verdict(result, 1).message.startswith("step tools/list failed: ")


def test_a_server_that_is_not_there_fails_the_first_step(tmp_path: Path) -> None:
    proc = spawn(tmp_path)
    wait_healthy(proc)
    proc.stop()
    result = anyio.run(probe, target_of(proc, [proc]))
    assert result.failed_step == Step.DISCOVER and result.error


def test_the_token_of_the_auth_secret_is_sent(tmp_path: Path) -> None:
    tokens = tmp_path / "tokens"
    tokens.write_text("first-token\nsecond-token\n")
    proc = spawn(tmp_path, {"MCP_AUTH_TOKEN_FILE": str(tokens)})
    try:
        wait_healthy(proc)
        refused = anyio.run(probe, target_of(proc, [proc]))
        accepted = anyio.run(probe, target_of(proc, [proc], token="second-token"))
    finally:
        proc.stop()
    assert refused.failed_step == Step.DISCOVER and "Unauthorized" in (refused.error or ""), refused
    assert not accepted.failed, accepted


# Decisions and messages (pure).


def passed(**fields: object) -> ProbeResult:
    result = ProbeResult(
        modern_version="2026-07-28",
        handshake_version="2025-11-25",
        server_name="demo",
        server_version="1.2",
        tools=4,
        served_by=["demo-a", "demo-b"],
    )
    for key, value in fields.items():
        setattr(result, key, value)
    return result


def test_what_verified_says() -> None:
    found = verdict(passed(), 2)
    assert (found.ok, found.reason) == (True, "AnswersAcrossReplicas")
    assert found.message == (
        "demo 1.2: 2026-07-28 discover and 4 tools; 2025-11-25 session served by each of 2 pods "
        "(demo-a, demo-b), then deleted"
    )
    assert "3 resources, 1 prompts" in verdict(passed(resources=3, prompts=1), 2).message
    failing = passed()
    failing.fail(Step.TOOLS, None, "Internal error: the app raised")
    assert verdict(failing, 2).message == "step tools/list failed: Internal error: the app raised"
    failing.fail(Step.CROSS_REPLICA, "demo-b", "a later failure is not the one reported")
    assert verdict(failing, 2).message.startswith("step tools/list failed")
    none = verdict(ProbeResult(), 0)
    assert (none.ok, none.reason) == (False, "NoReadyPods")


def test_the_summary_kubectl_shows() -> None:
    assert summary(passed(prompts=2)) == {
        "protocolVersions": ["2026-07-28", "2025-11-25"],
        "serverName": "demo",
        "serverVersion": "1.2",
        "tools": 4,
        "pods": 2,
        "prompts": 2,
    }


def condition(kind: str, status: str, generation: int) -> dict[str, object]:
    return {"type": kind, "status": status, "observedGeneration": generation}


@pytest.mark.parametrize(
    ("conditions", "generation", "due"),
    [
        ([condition("Ready", "True", 3)], 3, True),  # settled, never verified
        ([condition("Ready", "True", 3), condition("Verified", "True", 2)], 3, True),  # a new generation
        ([condition("Ready", "True", 3), condition("Verified", "False", 3)], 3, False),  # done for it
        ([condition("Ready", "False", 3)], 3, False),  # still rolling out
        ([condition("Ready", "True", 2)], 3, False),  # Ready of the previous generation
        ([], 1, False),
    ],
)
def test_the_first_probe_waits_for_a_settled_rollout(
    conditions: list[dict[str, object]], generation: int, due: bool
) -> None:
    assert first_probe_due({"conditions": conditions}, generation) is due


def test_periodic_probes_are_jittered() -> None:
    rng = random.Random(7)
    periods = [next_period(rng) for _ in range(200)]
    assert all(PERIOD_SECONDS * (1 - JITTER) <= p <= PERIOD_SECONDS * (1 + JITTER) for p in periods)
    assert len({round(p) for p in periods}) > 20


RESOURCE = "http://mcp.test/mcp"


@pytest.mark.parametrize("client", ["given", "wrong secret", "none"])
def test_the_probe_gets_an_access_token_or_says_why_it_cannot(tmp_path: Path, redis: RedisServer, client: str) -> None:
    """spec.auth.oauth: with a probe client the probe gets its token from the issuer (client credentials) and
    probes every pod; with a wrong secret its authorize step fails; without one it checks that the servers ask
    for a token and says what to set (NoProbeCredentials)."""
    with running_provider(tmp_path / "provider", [RESOURCE]) as provider:
        env = {
            **redis_env(redis),
            "MCP_OAUTH_ISSUER": provider.issuer,
            "MCP_OAUTH_RESOURCE": RESOURCE,
            "MCP_OAUTH_REQUIRED_SCOPES": "tools:read",
        }
        credentials = {"given": ("machine", "machine-secret"), "wrong secret": ("machine", "nope"), "none": None}
        oauth = OAuthProbe(provider.issuer, RESOURCE, credentials[client], ("tools:read",))
        with replicas(tmp_path, env, 2) as procs:
            result = anyio.run(probe, target_of(procs[0], procs, oauth=oauth))
    found = verdict(result, 2)
    if client == "given":
        assert found.ok, found
        assert result.served_by == [f"pod-{p.port}" for p in procs]
    elif client == "wrong secret":
        assert not found.ok and found.reason == VerifiedReason.PROBE_FAILED, found
        assert found.message.startswith("step authorize failed: no token for the probe client"), found.message
    else:
        assert not found.ok and found.reason == VerifiedReason.NO_PROBE_CREDENTIALS, found
        assert "spec.auth.oauth.probeClient" in found.message and provider.issuer in found.message
