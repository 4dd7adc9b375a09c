"""A highly available managed Redis, persistence by default, and external Sentinels: spec in, manifests out."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import pytest

from mcp_operator.api import McpServerSpec
from mcp_operator.crd import build_crd
from mcp_operator.defaults import (
    DATA_POD_GRACE_SECONDS,
    FAILOVER_TIMEOUT_MS,
    MASTER_NAME,
    REDIS_SHUTDOWN_SECONDS,
    ROLE_DISAGREEMENT_SECONDS,
    STALE_PRIMARY_SECONDS,
    START_FAILOVER_SECONDS,
    SWITCHOVER_CATCH_UP_SECONDS,
    SWITCHOVER_DEMOTE_SECONDS,
    SWITCHOVER_FAILOVER_SECONDS,
    SWITCHOVER_PAUSE_MS,
)
from mcp_operator.desired import ChildRef, desired_state
from mcp_operator.managed_redis import decide_persistence
from mcp_operator.redis_probe import Topology, in_sync, topology
from mcp_operator.redis_scripts import SCRIPTS
from mcp_operator.status import compute_status
from mcp_runtime.settings import RuntimeSettings
from tests.operator.manifests import KEYS, OWNER, build, env_of, spec

HA = {"sessions": {"backend": "redis"}, "redis": {"highAvailability": {"enabled": True}}}


def test_high_availability_makes_data_pods_three_sentinels_and_their_budgets() -> None:
    children = build(spec(**HA))
    data = children["StatefulSet/demo-redis"]
    sentinels = children["StatefulSet/demo-redis-sentinel"]
    assert data["spec"]["replicas"] == 3 and sentinels["spec"]["replicas"] == 3
    assert data["spec"]["serviceName"] == "demo-redis-hl"
    assert sentinels["spec"]["serviceName"] == "demo-redis-sentinel-hl"
    for name in ("demo-redis-hl", "demo-redis-sentinel-hl"):
        service = children[f"Service/{name}"]["spec"]
        assert service["clusterIP"] == "None" and service["publishNotReadyAddresses"] is True
    assert set(children["ConfigMap/demo-redis-scripts"]["data"]) == set(SCRIPTS)
    for name in ("demo-redis", "demo-redis-sentinel"):
        assert children[f"PodDisruptionBudget/{name}"]["spec"]["maxUnavailable"] == 1
    for sts in (data, sentinels):
        pod = sts["spec"]["template"]["spec"]
        preferred = pod["affinity"]["podAntiAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"]
        assert {t["podAffinityTerm"]["topologyKey"] for t in preferred} == {
            "kubernetes.io/hostname",
            "topology.kubernetes.io/zone",
        }
        assert sts["spec"]["podManagementPolicy"] == "Parallel"
    container = data["spec"]["template"]["spec"]["containers"][0]
    assert container["command"] == ["/bin/sh", "/scripts/redis-start.sh"]
    assert container["lifecycle"]["preStop"]["exec"]["command"] == ["/bin/sh", "/scripts/redis-pre-stop.sh"]


def test_the_server_pods_follow_the_sentinels_and_wait_for_a_replica() -> None:
    env = env_of(build(spec(**HA))["Deployment/demo"])
    assert "MCP_REDIS_URL" not in env
    assert env["MCP_REDIS_SENTINELS"] == ",".join(
        f"demo-redis-sentinel-{i}.demo-redis-sentinel-hl.team-a.svc:26379" for i in range(3)
    )
    assert env["MCP_REDIS_SENTINEL_MASTER"] == MASTER_NAME
    assert env["MCP_REDIS_WAIT_REPLICAS"] == "1" and env["MCP_REDIS_UNREPLICATED"] == "refuse"  # strict
    assert env["MCP_REDIS_PASSWORD_FILE"]
    # What the operator renders, the runtime accepts.
    plain = {k: v for k, v in env.items() if isinstance(v, str) and not k.endswith("_FILE")}
    fields = {k.removeprefix("MCP_").lower(): v for k, v in plain.items()} | {"request_state_keys": "k" * 40}
    settings = RuntimeSettings.model_validate(fields)
    assert settings.redis_sentinels and settings.redis_wait_replicas == 1


def test_the_network_policies_cover_the_sentinels() -> None:
    children = build(spec(**HA))
    redis = children["NetworkPolicy/demo-redis"]["spec"]
    sentinel = children["NetworkPolicy/demo-redis-sentinel"]["spec"]
    assert redis["ingress"][0]["ports"] == [{"protocol": "TCP", "port": 6379}]
    assert sentinel["ingress"][0]["ports"] == [{"protocol": "TCP", "port": 26379}]
    components = {
        f["podSelector"]["matchLabels"].get("app.kubernetes.io/component") for f in sentinel["ingress"][0]["from"]
    }
    assert components == {"server", "redis", "sentinel", None}  # None: the operator, in any namespace


def test_switching_high_availability_off_removes_the_sentinels() -> None:
    state = desired_state(OWNER, spec(sessions={"backend": "redis"}), KEYS, {})
    assert ChildRef("apps/v1", "StatefulSet", "demo-redis-sentinel") in state.absent
    assert ChildRef("v1", "ConfigMap", "demo-redis-scripts") in state.absent
    back_to_memory = desired_state(OWNER, spec(), KEYS, {})
    assert ChildRef("apps/v1", "StatefulSet", "demo-redis-sentinel") in back_to_memory.absent


def test_external_sentinels() -> None:
    s = spec(
        sessions={"backend": "redis"},
        redis={
            "mode": "external",
            "sentinels": ["s1.example:26379", "s2.example:26379"],
            "sentinelMasterName": "prod",
            "url": "rediss://redis.example:6379/2",
            "tls": True,
            "passwordSecretRef": {"name": "r", "key": "password"},
        },
    )
    env = env_of(build(s)["Deployment/demo"])
    assert env["MCP_REDIS_SENTINELS"] == "s1.example:26379,s2.example:26379"
    assert env["MCP_REDIS_SENTINEL_MASTER"] == "prod"
    assert env["MCP_REDIS_URL"] == "rediss://redis.example:6379/2"
    assert "StatefulSet/demo-redis" not in build(s)


@pytest.mark.parametrize(
    ("persistence", "existing", "default_class", "enabled", "says"),
    [
        ({}, None, True, True, "default StorageClass"),
        ({}, None, False, False, "no default StorageClass"),
        ({"storageClassName": "fast"}, None, False, True, "storage class fast"),
        ({"enabled": False}, None, True, False, "enabled is false"),
        ({"enabled": True}, None, False, True, "spec.redis.persistence.enabled"),
        ({}, {"spec": {"volumeClaimTemplates": [{}]}}, False, True, "when the Redis StatefulSet was made"),
        ({}, {"spec": {}}, True, False, "when the Redis StatefulSet was made"),
    ],
)
def test_persistence_is_on_by_default_when_the_cluster_can_give_a_volume(
    persistence: dict[str, Any], existing: dict[str, Any] | None, default_class: bool, enabled: bool, says: str
) -> None:
    s = spec(sessions={"backend": "redis"}, redis={"persistence": persistence})
    decided = decide_persistence(s, existing, default_class)
    assert decided.enabled is enabled and says in decided.reason
    sts = desired_state(OWNER, s, KEYS, {}, decided).apply
    redis = next(m for m in sts if m["kind"] == "StatefulSet" and m["metadata"]["name"] == "demo-redis")
    assert bool(redis["spec"].get("volumeClaimTemplates")) is enabled


def test_ha_data_pods_get_claims_and_aof_when_persistent() -> None:
    s = spec(**HA)
    decided = decide_persistence(s, None, default_class=True)
    data = next(
        m
        for m in desired_state(OWNER, s, KEYS, {}, decided).apply
        if m["kind"] == "StatefulSet" and m["metadata"]["name"] == "demo-redis"
    )
    assert data["spec"]["volumeClaimTemplates"][0]["spec"]["resources"]["requests"]["storage"] == "1Gi"
    env = {e["name"]: e.get("value") for e in data["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["PERSIST"] == "yes"


def replica(flags: str, link: str) -> dict[str, Any]:
    return {"flags": flags, "master-link-status": link}


def test_topology_counts_the_replicas_in_sync() -> None:
    master = {"ip": "demo-redis-1.demo-redis-hl.team-a.svc", "flags": "master"}
    replicas = [replica("slave", "ok"), replica("slave", "err"), replica("s_down,slave,disconnected", "err")]
    assert topology(master, replicas) == Topology("demo-redis-1.demo-redis-hl.team-a.svc", 3, 1)
    assert topology({"ip": "x", "flags": "s_down,master"}, []).primary is None
    assert in_sync(replica("slave", "ok")) and not in_sync(replica("s_down,slave", "ok"))


def redis_sts(ready: int) -> dict[str, Any]:
    return {"status": {"readyReplicas": ready}}


def redis_ready(s: McpServerSpec, sts: dict[str, Any], top: Topology | None) -> dict[str, Any]:
    decided = decide_persistence(s, sts, default_class=False)
    status = compute_status(owner=OWNER, spec=s, generation=1, redis=sts, persistence=decided, topology=top)
    return next(c for c in status["conditions"] if c["type"] == "RedisReady")


def test_redis_ready_names_the_primary_and_the_replicas_in_sync() -> None:
    s = spec(**HA)
    ok = redis_ready(s, redis_sts(3), Topology("demo-redis-0.x", 2, 2))
    assert ok["status"] == "True" and ok["reason"] == "Ready"
    assert "primary demo-redis-0.x; 2 of 2 replicas in sync; 3 of 3 Redis pods ready" in ok["message"]
    assert "persistence off" in ok["message"]
    lagging = redis_ready(s, redis_sts(2), Topology("demo-redis-0.x", 2, 1))
    assert lagging["status"] == "True" and lagging["reason"] == "ReplicasOutOfSync"
    failing_over = redis_ready(s, redis_sts(2), Topology(None, 2, 0))
    assert failing_over["status"] == "False" and failing_over["reason"] == "NoPrimary"
    unreachable = redis_ready(s, redis_sts(3), Topology(None, error="connection refused"))
    assert unreachable["reason"] == "SentinelsUnreachable" and "connection refused" in unreachable["message"]


@pytest.mark.parametrize("name", sorted(SCRIPTS))
def test_the_redis_scripts_pass_shellcheck(tmp_path: Path, name: str) -> None:
    for each, text in SCRIPTS.items():  # as the ConfigMap mounts them: side by side, so `.` finds the helpers
        (tmp_path / each).write_text(text)
    # shellcheck is installed by `make test` (Debian's package), as redis-server is.
    command = ["shellcheck", "-x", "-P", "SCRIPTDIR", "-s", "sh", str(tmp_path / name)]
    done = subprocess.run(command, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout


def data_env(s: McpServerSpec, component: str = "redis") -> dict[str, Any]:
    name = "demo-redis" if component == "redis" else "demo-redis-sentinel"
    return env_of(build(s)[f"StatefulSet/{name}"])


def test_the_scripts_know_each_node_by_address_and_port() -> None:
    data, sentinel = data_env(spec(**HA)), data_env(spec(**HA), "sentinel")
    # The pod's own DNS name, expanded by the kubelet from POD_NAME (defined before it).
    assert data["ME_HOST"] == "$(POD_NAME).demo-redis-hl.team-a.svc"
    assert sentinel["ME_HOST"] == "$(POD_NAME).demo-redis-sentinel-hl.team-a.svc"
    assert list(data).index("POD_NAME") < list(data).index("ME_HOST")
    for env in (data, sentinel):
        assert env["DATA_ADDRESSES"] == " ".join(f"demo-redis-{i}.demo-redis-hl.team-a.svc:6379" for i in range(3))
        assert env["SENTINEL_ADDRESSES"] == " ".join(
            f"demo-redis-sentinel-{i}.demo-redis-sentinel-hl.team-a.svc:26379" for i in range(3)
        )
        assert env["REDIS_PORT"] == "6379" and env["SENTINEL_PORT"] == "26379" and env["MASTER_NAME"] == MASTER_NAME
    five = data_env(spec(sessions={"backend": "redis"}, redis={"highAvailability": {"enabled": True, "replicas": 5}}))
    assert len(five["DATA_ADDRESSES"].split()) == 5


def test_every_variable_a_script_reads_is_rendered() -> None:
    """A variable the scripts read that the operator does not set would break only on a cluster."""
    read = set()
    for text in SCRIPTS.values():
        read |= set(re.findall(r"\$\{?([A-Z][A-Z0-9_]*)", text))
    optional = {"REDIS_BIND"}  # the loopback tests' own (${REDIS_BIND:-...})
    for component in ("redis", "sentinel"):
        assert read - optional <= set(data_env(spec(**HA), component)), read - set(data_env(spec(**HA), component))


def test_a_primary_cut_off_from_its_replicas_stops_taking_writes() -> None:
    env = data_env(spec(**HA))
    assert env["MIN_REPLICAS_TO_WRITE"] == "1" and env["MIN_REPLICAS_MAX_LAG"] == "2"
    start = SCRIPTS["redis-start.sh"]
    assert '--min-replicas-to-write "$MIN_REPLICAS_TO_WRITE"' in start
    assert '--min-replicas-max-lag "$MIN_REPLICAS_MAX_LAG"' in start
    # Every data node keeps the default replica-priority, so the Sentinels promote the one with the highest offset.
    assert "--replica-priority" not in start and "--slave-priority" not in start


def test_the_switchover_fits_the_grace_period_and_the_pause_outlasts_it() -> None:
    data = build(spec(**HA))["StatefulSet/demo-redis"]["spec"]["template"]["spec"]
    steps = SWITCHOVER_CATCH_UP_SECONDS + SWITCHOVER_FAILOVER_SECONDS + SWITCHOVER_DEMOTE_SECONDS
    assert steps * 1000 < SWITCHOVER_PAUSE_MS  # the pause ends by itself only if the script was killed
    assert steps + 2 + REDIS_SHUTDOWN_SECONDS < DATA_POD_GRACE_SECONDS == data["terminationGracePeriodSeconds"]
    env = data_env(spec(**HA))
    assert env["SWITCHOVER_PAUSE_MS"] == str(SWITCHOVER_PAUSE_MS)
    assert env["SHUTDOWN_TIMEOUT_SECONDS"] == str(REDIS_SHUTDOWN_SECONDS)


def test_a_data_pod_may_wait_for_a_failover_before_it_listens() -> None:
    container = build(spec(**HA))["StatefulSet/demo-redis"]["spec"]["template"]["spec"]["containers"][0]
    startup = container["startupProbe"]
    assert startup["tcpSocket"] == {"port": "redis"}
    # The liveness probe starts only once the start script has let redis-server listen.
    assert startup["periodSeconds"] * startup["failureThreshold"] > STALE_PRIMARY_SECONDS + START_FAILOVER_SECONDS


def test_a_data_node_whose_role_disagrees_with_the_sentinels_long_past_a_failover_is_restarted() -> None:
    container = build(spec(**HA))["StatefulSet/demo-redis"]["spec"]["template"]["spec"]["containers"][0]
    live = container["livenessProbe"]
    assert live["exec"]["command"][-1].endswith("/redis-live.sh")
    window = live["periodSeconds"] * live["failureThreshold"]
    assert window == ROLE_DISAGREEMENT_SECONDS and window > 2 * FAILOVER_TIMEOUT_MS / 1000
    assert live["timeoutSeconds"] < live["periodSeconds"]
    assert "redis-live.sh" in build(spec(**HA))["ConfigMap/demo-redis-scripts"]["data"]


@pytest.mark.parametrize(
    ("durability", "wait", "unreplicated"),
    [("async", "0", None), ("replicated", "1", "accept"), ("strict", "1", "refuse"), (None, "1", "refuse")],
)
def test_durability_is_rendered_into_the_server_pods(durability: str | None, wait: str, unreplicated: str) -> None:
    ha: dict[str, Any] = {"enabled": True}
    if durability:
        ha["durability"] = durability
    env = env_of(build(spec(sessions={"backend": "redis"}, redis={"highAvailability": ha}))["Deployment/demo"])
    assert env["MCP_REDIS_WAIT_REPLICAS"] == wait
    assert env.get("MCP_REDIS_UNREPLICATED") == unreplicated
    plain = {k.removeprefix("MCP_").lower(): v for k, v in env.items() if k.startswith("MCP_REDIS_") and v}
    settings = RuntimeSettings.model_validate({**plain, "redis_password_file": None, "request_state_keys": "k" * 40})
    assert settings.redis_wait_replicas == int(wait)
    if unreplicated:
        assert settings.redis_unreplicated == unreplicated


def test_durability_is_explained_in_the_crd() -> None:
    schema = build_crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    ha = schema["properties"]["spec"]["properties"]["redis"]["properties"]["highAvailability"]
    durability = ha["properties"]["durability"]
    assert durability["enum"] == ["async", "replicated", "strict"] and durability["default"] == "strict"
    text = durability["description"]
    for mode in ("async:", "replicated:", "strict:"):
        assert mode in text
    assert "loses nothing" in text and "503" in text and "WAIT" in text
    with pytest.raises(ValueError):
        spec(redis={"highAvailability": {"durability": "Strict"}})
