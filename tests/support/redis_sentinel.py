"""A primary, its replicas and three Sentinels: real redis-server processes on loopback, for failover tests."""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis

from tests.support.procs import free_port
from tests.support.redis_server import SHARED_KEY, RedisServer, make_tls_files, wait_answering

MASTER = "mymaster"


@dataclass
class Sentinel:
    port: int
    workdir: Path
    password: str | None = None
    tls: Path | None = None  # a directory of ca.crt, server.crt, server.key: TLS to clients and to Redis
    process: subprocess.Popen[bytes] | None = None

    def start(self, primary_port: int, *, down_after_ms: int) -> Sentinel:
        self.workdir.mkdir(parents=True, exist_ok=True)
        conf = self.workdir / "sentinel.conf"
        listen = [f"port {self.port}"]
        if self.tls is not None:
            listen = [
                "port 0",
                f"tls-port {self.port}",
                f"tls-cert-file {self.tls / 'server.crt'}",
                f"tls-key-file {self.tls / 'server.key'}",
                f"tls-ca-cert-file {self.tls / 'ca.crt'}",
                "tls-auth-clients no",
                "tls-replication yes",
            ]
        lines = [
            *listen,
            "bind 127.0.0.1",
            f"dir {self.workdir}",
            f"sentinel monitor {MASTER} 127.0.0.1 {primary_port} 2",
            f"sentinel down-after-milliseconds {MASTER} {down_after_ms}",
            f"sentinel failover-timeout {MASTER} 10000",
            f"sentinel parallel-syncs {MASTER} 2",
        ]
        if self.password:
            lines += [f"sentinel auth-pass {MASTER} {self.password}", f"requirepass {self.password}"]
        conf.write_text("\n".join(lines) + "\n")
        binary = shutil.which("redis-server")
        assert binary is not None
        log = (self.workdir / "sentinel.log").open("ab")
        self.process = subprocess.Popen([binary, str(conf), "--sentinel"], stdout=log, stderr=subprocess.STDOUT)
        wait_answering(self.client, self.workdir / "sentinel.log", "redis-sentinel")
        return self

    def client(self) -> redis.Redis:
        tls: dict[str, Any] = {}
        if self.tls is not None:
            tls = {"ssl": True, "ssl_ca_certs": str(self.tls / "ca.crt"), "ssl_cert_reqs": "required"}
        return redis.Redis(
            host="127.0.0.1", port=self.port, password=self.password, decode_responses=True, socket_timeout=2, **tls
        )

    def master_port(self) -> int:
        """The port this Sentinel names for the primary."""
        answer: Any = self.client().sentinel_get_master_addr_by_name(MASTER)
        return int(answer[1])

    def master_state(self) -> dict[str, Any]:
        state: Any = self.client().sentinel_master(MASTER)
        return dict(state)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)


@dataclass
class SentinelGroup:
    """redis-servers (index 0 starts as the primary) and Sentinels monitoring them as `mymaster`."""

    servers: list[RedisServer]
    sentinels: list[Sentinel] = field(default_factory=list)

    @property
    def addresses(self) -> str:
        return ",".join(f"127.0.0.1:{s.port}" for s in self.sentinels)

    def env(self, **extra: str) -> dict[str, str]:
        """The runtime's environment: the Sentinels and, when there is one, the password in a URL."""
        env = {
            "MCP_SESSION_BACKEND": "redis",
            "MCP_REDIS_SENTINELS": self.addresses,
            "MCP_REDIS_SENTINEL_MASTER": MASTER,
            "MCP_REDIS_TIMEOUT_SECONDS": "0.5",
            "MCP_REQUEST_STATE_KEYS": SHARED_KEY,
        }
        first = self.servers[0]
        if first.tls:
            auth = f":{first.password}@" if first.password else ""
            ca = first.workdir / "ca.crt"
            env["MCP_REDIS_URL"] = f"rediss://{auth}ignored:6379/0?ssl_ca_certs={ca}&ssl_cert_reqs=required"
        elif first.password:
            env["MCP_REDIS_URL"] = f"redis://:{first.password}@ignored:6379/0"
        env.update(extra)
        return env

    def primary_port(self) -> int:
        return self.sentinels[0].master_port()

    def primary(self) -> RedisServer:
        port = self.primary_port()
        return next(s for s in self.servers if s.port == port)

    def wait_replicas_in_sync(self, count: int, timeout: float = 20) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                info = self.primary().client().info("replication")
                online = [v for k, v in info.items() if k.startswith("slave") and v.get("state") == "online"]
                if len(online) >= count:
                    return
            except (redis.RedisError, StopIteration):
                pass
            time.sleep(0.1)
        raise AssertionError(f"fewer than {count} replicas in sync after {timeout}s")

    def wait_sentinels_know(self, replicas: int, timeout: float = 20) -> None:
        """Every Sentinel sees the primary's replicas and the other Sentinels (so a failover can be voted)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            ready = True
            for sentinel in self.sentinels:
                try:
                    master = sentinel.master_state()
                except redis.RedisError:
                    ready = False
                    break
                known_sentinels = int(master.get("num-other-sentinels", 0))
                known_replicas = int(master.get("num-slaves", 0))
                if known_sentinels < len(self.sentinels) - 1 or known_replicas < replicas:
                    ready = False
            if ready:
                return
            time.sleep(0.2)
        raise AssertionError("the Sentinels did not discover each other and the replicas in time")

    def wait_new_primary(self, old_port: int, timeout: float = 30) -> float:
        """Seconds until every Sentinel names a primary other than `old_port`."""
        started = time.monotonic()
        while time.monotonic() - started < timeout:
            try:
                ports = {s.master_port() for s in self.sentinels}
                if old_port not in ports and len(ports) == 1:
                    return time.monotonic() - started
            except redis.RedisError:
                pass
            time.sleep(0.05)
        raise AssertionError(f"no failover away from port {old_port} in {timeout}s")

    def stop(self) -> None:
        for sentinel in self.sentinels:
            sentinel.stop()
        for server in self.servers:
            server.stop()


@contextmanager
def sentinel_group(
    workdir: Path, *, replicas: int = 2, password: str | None = None, down_after_ms: int = 1000, tls: bool = False
) -> Iterator[SentinelGroup]:
    """With `tls`, one CA signs every server's certificate, and every link (clients, replication, the
    Sentinels' own) is TLS."""
    servers: list[RedisServer] = []
    group = SentinelGroup(servers)
    certs = workdir / "tls" if tls else None
    if certs is not None:
        certs.mkdir(parents=True)
        make_tls_files(certs)

    def server(name: str, extra: list[str]) -> RedisServer:
        made = RedisServer(free_port(), workdir / name, password=password, tls=tls, extra=extra)
        made.workdir.mkdir(parents=True)
        if certs is not None:
            for file in ("ca.crt", "server.crt", "server.key"):
                shutil.copy(certs / file, made.workdir / file)
        return made.start()

    try:
        links = ["--masterauth", password] if password else []
        links += ["--tls-replication", "yes"] if tls else []
        primary = server("redis-0", list(links))
        servers.append(primary)
        for i in range(1, replicas + 1):
            servers.append(server(f"redis-{i}", ["--replicaof", "127.0.0.1", str(primary.port), *links]))
        for i in range(3):
            sentinel = Sentinel(free_port(), workdir / f"sentinel-{i}", password=password, tls=certs)
            group.sentinels.append(sentinel.start(primary.port, down_after_ms=down_after_ms))
        group.wait_replicas_in_sync(replicas)
        group.wait_sentinels_know(replicas)
        yield group
    finally:
        group.stop()
