"""The operator's Redis scripts (operator/mcp_operator/scripts) on loopback: data nodes started by redis-start.sh,
Sentinels by sentinel-start.sh, pre-stop run by hand, all with the environment the operator renders for its
pods (`redis_ha.script_env`), only the addresses (127.0.0.1, each its own port), directories and the
Sentinels' timings changed."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from importlib.resources import files
from pathlib import Path

import redis

from mcp_operator.api import McpServerSpec
from mcp_operator.managed_redis import Persistence
from mcp_operator.names import Owner
from mcp_operator.redis_ha import script_env
from tests.support.procs import free_port
from tests.support.redis_sentinel import MASTER, Sentinel, SentinelGroup
from tests.support.redis_server import RedisServer, wait_answering

SCRIPTS = Path(str(files("mcp_operator").joinpath("scripts")))
PASSWORD = "s3cret"
DOWN_AFTER_MS = 1000  # the cluster's 5000, shortened so a test waits less for an unplanned failover


def operator_env(data_nodes: int) -> dict[str, str]:
    """The plain variables the operator renders into a data pod (the same names and constants the cluster's
    pods get); the ones that name the cluster are replaced by the caller."""
    spec = McpServerSpec.model_validate(
        {"sessions": {"backend": "redis"}, "redis": {"highAvailability": {"enabled": True, "replicas": data_nodes}}}
    )
    rendered = script_env(Owner("loopback", "test", "uid"), spec, Persistence(True, "the tests' own dir"), "redis")
    return {e["name"]: e["value"] for e in rendered if "value" in e}


@dataclass
class ScriptedGroup(SentinelGroup):
    """Data nodes and Sentinels run by the operator's scripts; `servers[0]` is the set's first primary."""

    workdir: Path = Path()
    base_env: dict[str, str] = field(default_factory=dict)

    def node_env(self, server: RedisServer) -> dict[str, str]:
        return {
            **self.base_env,
            "ME_HOST": "127.0.0.1",
            "REDIS_PORT": str(server.port),
            "DATA_DIR": str(server.workdir),
        }

    def start_node(
        self, server: RedisServer, wait: bool = True, env: dict[str, str] | None = None
    ) -> subprocess.Popen[bytes]:
        """Start a data node through redis-start.sh, as its pod would (the script execs redis-server, so the
        process is the node's own); with `wait`, until it answers. `env` overrides the node's environment."""
        log = (server.workdir / "redis.log").open("ab")
        command = ["/bin/sh", str(SCRIPTS / "redis-start.sh")]
        environment = self.node_env(server) | (env or {})
        server.process = subprocess.Popen(command, env=environment, stdout=log, stderr=subprocess.STDOUT)
        if wait:
            wait_answering(server.client, server.workdir / "redis.log", "redis-start.sh")
        return server.process

    def start_sentinel(self, sentinel: Sentinel) -> None:
        env = {**self.base_env, "ME_HOST": "127.0.0.1", "SENTINEL_PORT": str(sentinel.port)}
        env["SENTINEL_DIR"] = str(sentinel.workdir)
        log = (sentinel.workdir / "sentinel.log").open("ab")
        command = ["/bin/sh", str(SCRIPTS / "sentinel-start.sh")]
        sentinel.process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)

    def pre_stop(self, server: RedisServer, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        """Run redis-pre-stop.sh for `server`, as the kubelet does before stopping its pod."""
        command = ["/bin/sh", str(SCRIPTS / "redis-pre-stop.sh")]
        env = self.node_env(server)
        return subprocess.run(command, env=env, capture_output=True, text=True, timeout=timeout)

    def live(self, server: RedisServer) -> subprocess.CompletedProcess[str]:
        """Run redis-live.sh for `server`, as the kubelet's liveness probe does."""
        command = ["/bin/sh", str(SCRIPTS / "redis-live.sh")]
        return subprocess.run(command, env=self.node_env(server), capture_output=True, text=True, timeout=30)

    def log(self, server: RedisServer) -> str:
        return (server.workdir / "redis.log").read_text(errors="replace")

    def role(self, server: RedisServer) -> tuple[str, int | None]:
        """("master", None) or ("slave", the port of its primary)."""
        info = server.client().info("replication")
        if info["role"] == "master":
            return "master", None
        return "slave", int(info["master_port"])

    def wait_role(self, server: RedisServer, role: tuple[str, int | None], timeout: float = 30) -> float:
        started = time.monotonic()
        seen: object = None
        while time.monotonic() - started < timeout:
            try:
                seen = self.role(server)
                if seen == role:
                    return time.monotonic() - started
            except redis.RedisError as error:
                seen = error
            time.sleep(0.1)
        raise AssertionError(f"port {server.port} is not {role} after {timeout}s: {seen}")


@contextmanager
def scripted_group(workdir: Path, *, replicas: int = 2) -> Iterator[ScriptedGroup]:
    """A primary and `replicas` replicas started by redis-start.sh (its first-start path: no Sentinel answers
    yet, so the first node is the primary and the others its replicas), then three Sentinels started by
    sentinel-start.sh; returns once the replicas are in sync and the Sentinels know each other."""
    data_ports = [free_port() for _ in range(replicas + 1)]
    sentinel_ports = [free_port() for _ in range(3)]
    base = operator_env(replicas + 1)
    base.update(
        {
            "PATH": os.environ["PATH"],
            "REDIS_PASSWORD": PASSWORD,
            "REDIS_BIND": "127.0.0.1",
            "MASTER_NAME": MASTER,
            "DATA_ADDRESSES": " ".join(f"127.0.0.1:{p}" for p in data_ports),
            "SENTINEL_ADDRESSES": " ".join(f"127.0.0.1:{p}" for p in sentinel_ports),
            "DOWN_AFTER_MS": str(DOWN_AFTER_MS),
        }
    )
    group = ScriptedGroup(servers=[], workdir=workdir, base_env=base)
    try:
        for i, port in enumerate(data_ports):
            server = RedisServer(port, workdir / f"redis-{i}", password=PASSWORD)
            server.workdir.mkdir(parents=True)
            group.servers.append(server)
            group.start_node(server)
        for i, port in enumerate(sentinel_ports):
            sentinel = Sentinel(port, workdir / f"sentinel-{i}", password=PASSWORD)
            sentinel.workdir.mkdir(parents=True)
            group.sentinels.append(sentinel)
            group.start_sentinel(sentinel)
        for sentinel in group.sentinels:
            wait_answering(sentinel.client, sentinel.workdir / "sentinel.log", "sentinel-start.sh")
        group.wait_replicas_in_sync(replicas)
        group.wait_sentinels_know(replicas)
        yield group
    finally:
        group.stop()
