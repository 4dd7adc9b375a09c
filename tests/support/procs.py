"""Real `mcp-runtime` processes on loopback: started, waited for, restarted, stopped, and their metrics read."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx2

DEMO_APP = "mcp_runtime.examples.demo:app"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass
class RuntimeProcess:
    port: int
    process: subprocess.Popen[bytes]
    log_path: Path
    env: dict[str, str] = field(default_factory=dict)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"{self.base}/mcp"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def alive(self) -> bool:
        return self.process.poll() is None

    def signal(self, sig: int) -> None:
        self.process.send_signal(sig)

    def stop(self, timeout: float = 10) -> int:
        if self.alive():
            self.process.send_signal(signal.SIGTERM)
            try:
                return self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
        return self.process.wait(5)


def serve_command(port: int, app: str = DEMO_APP) -> list[str]:
    """The command line of `mcp-runtime serve` on loopback (tests and benchmarks start it the same way)."""
    return [sys.executable, "-m", "mcp_runtime.cli", "serve", "--app", app, "--host", "127.0.0.1", "--port", str(port)]


def spawn(tmp_path: Path, env: dict[str, str] | None = None, app: str = DEMO_APP) -> RuntimeProcess:
    """Start `mcp-runtime serve` on a free port (not waiting for it)."""
    port = free_port()
    log_path = tmp_path / f"runtime-{port}.log"
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("MCP_")}
    full_env.update({"MCP_SHUTDOWN_GRACE_SECONDS": "10", "MCP_REPLICA_NAME": f"replica-{port}"})
    full_env.update(env or {})
    cmd = serve_command(port, app)
    with log_path.open("wb") as log:
        process = subprocess.Popen(cmd, env=full_env, stdout=log, stderr=subprocess.STDOUT)
    return RuntimeProcess(port, process, log_path, full_env)


def wait_healthy(proc: RuntimeProcess, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not proc.alive():
            raise RuntimeError(f"mcp-runtime exited with {proc.process.returncode}:\n{proc.log()}")
        try:
            if httpx2.get(f"{proc.base}/healthz", timeout=1).status_code == 200:
                return
        except httpx2.TransportError:
            pass
        time.sleep(0.05)
    raise RuntimeError(f"mcp-runtime did not become healthy in {timeout}s:\n{proc.log()}")


def restart(proc: RuntimeProcess) -> RuntimeProcess:
    """Start a stopped or killed replica again on the same port with the same settings, and wait for it."""
    cmd = serve_command(proc.port)
    with proc.log_path.open("ab") as log:
        process = subprocess.Popen(cmd, env=proc.env, stdout=log, stderr=subprocess.STDOUT)
    again = RuntimeProcess(proc.port, process, proc.log_path, proc.env)
    wait_healthy(again)
    return again


@contextmanager
def running(tmp_path: Path, env: dict[str, str] | None = None) -> Iterator[RuntimeProcess]:
    proc = spawn(tmp_path, env)
    try:
        wait_healthy(proc)
        yield proc
    finally:
        proc.stop()


def metric(base: str, name: str, labels: str = "") -> float:
    """A sample's value from /metrics (0 when absent)."""
    text = httpx2.get(f"{base}/metrics", timeout=5).text
    wanted = f"{name}{{{labels}}}" if labels else name
    for line in text.splitlines():
        if line.startswith(wanted + " "):
            return float(line.split()[-1])
    return 0.0
