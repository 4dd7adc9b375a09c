"""A real redis-server (the Debian package) on a free loopback port, started and stopped by the tests."""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import redis

from tests.support.procs import RuntimeProcess, free_port, spawn, wait_healthy


@dataclass
class RedisServer:
    port: int
    workdir: Path
    password: str | None = None
    tls: bool = False
    extra: list[str] = field(default_factory=list)
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        auth = f":{self.password}@" if self.password else ""
        if self.tls:
            ca = self.workdir / "ca.crt"
            return f"rediss://{auth}127.0.0.1:{self.port}/0?ssl_ca_certs={ca}&ssl_cert_reqs=required"
        return f"redis://{auth}127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("redis-server is not installed (apt-get install -y redis-server)")
        args = [binary, "--bind", "127.0.0.1", "--save", "", "--dir", str(self.workdir), *self.extra]
        if self.password:
            args += ["--requirepass", self.password]
        if self.tls:
            args += [
                "--port",
                "0",
                "--tls-port",
                str(self.port),
                "--tls-cert-file",
                str(self.workdir / "server.crt"),
                "--tls-key-file",
                str(self.workdir / "server.key"),
                "--tls-ca-cert-file",
                str(self.workdir / "ca.crt"),
                "--tls-auth-clients",
                "no",
            ]
        else:
            args += ["--port", str(self.port)]
        log = (self.workdir / "redis.log").open("ab")
        self.process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT)
        wait_answering(self.client, self.workdir / "redis.log", "redis-server")
        return self

    def client(self) -> redis.Redis:
        return redis.Redis.from_url(self.url, decode_responses=True, socket_timeout=2)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)


def wait_answering(client: Callable[[], redis.Redis], log: Path, what: str) -> None:
    """Until a server just started answers PING (10 s), else fail with the end of its log."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            if client().ping():
                return
        except redis.RedisError:
            time.sleep(0.05)
    raise RuntimeError(f"{what} did not start: {log.read_text()[-2000:]}")


def make_tls_files(workdir: Path) -> None:
    """A CA and a server certificate for 127.0.0.1, made with openssl."""

    def run(*args: str) -> None:
        subprocess.run(["openssl", *args], check=True, capture_output=True, cwd=workdir)

    run(
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "ca.key",
        "-out",
        "ca.crt",
        "-days",
        "2",
        "-subj",
        "/CN=test-ca",
    )
    run("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=127.0.0.1")
    (workdir / "san.ext").write_text("subjectAltName=IP:127.0.0.1\n")
    run(
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.crt",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "server.crt",
        "-days",
        "2",
        "-extfile",
        "san.ext",
    )


def start_redis(workdir: Path, **kwargs: object) -> RedisServer:
    workdir.mkdir(parents=True, exist_ok=True)
    server = RedisServer(free_port(), workdir, **kwargs)  # type: ignore[arg-type]
    if server.tls:
        make_tls_files(workdir)
    return server.start()


SHARED_KEY = "test-request-state-key-" + "k" * 32


def redis_env(server: RedisServer, **extra: str) -> dict[str, str]:
    return {
        "MCP_SESSION_BACKEND": "redis",
        "MCP_REDIS_URL": server.url,
        "MCP_REDIS_TIMEOUT_SECONDS": "0.5",
        "MCP_REQUEST_STATE_KEYS": SHARED_KEY,
        **extra,
    }


@contextmanager
def replicas(tmp_path: Path, env: dict[str, str], count: int = 3) -> Iterator[list[RuntimeProcess]]:
    procs = [spawn(tmp_path, env) for _ in range(count)]
    try:
        for proc in procs:
            wait_healthy(proc)
        yield procs
    finally:
        for proc in procs:
            proc.stop()
