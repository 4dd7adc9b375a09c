"""Real `mcp-runtime` processes on loopback for the tests, and the official MCP client pointed at them."""

from __future__ import annotations

import json
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
from typing import Any

import httpx2
import mcp_types as types
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

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


@contextmanager
def running(tmp_path: Path, env: dict[str, str] | None = None) -> Iterator[RuntimeProcess]:
    proc = spawn(tmp_path, env)
    try:
        wait_healthy(proc)
        yield proc
    finally:
        proc.stop()


async def answer_elicitation(_ctx: Any, params: types.ElicitRequestParams) -> types.ElicitResult:
    question = getattr(params, "message", "")
    return types.ElicitResult(action="accept", content={"answer": f"answer to {question}"})


def mcp_client(url: str, mode: str, *, token: str | None = None, http: httpx2.AsyncClient | None = None) -> Client:
    """The official client in `legacy` or `2026-07-28` mode, answering elicitations."""
    if http is None and token is not None:
        http = httpx2.AsyncClient(headers={"Authorization": f"Bearer {token}"}, timeout=30)
    server: Any = url if http is None else streamable_http_client(url, http_client=http)
    return Client(server, mode=mode, elicitation_callback=answer_elicitation)  # type: ignore[arg-type]


INIT_BODY = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {
        "protocolVersion": "2025-11-25",
        "capabilities": {},
        "clientInfo": {"name": "raw-test", "version": "0"},
    },
}
JSON_HEADERS = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream"}


def open_raw_session(
    base_url: str, headers: dict[str, str] | None = None, capabilities: dict[str, Any] | None = None
) -> httpx2.Response:
    """initialize + initialized over plain HTTP; returns the initialize response."""
    h = {**JSON_HEADERS, **(headers or {})}
    body: dict[str, Any] = json.loads(json.dumps(INIT_BODY))
    if capabilities is not None:
        body["params"]["capabilities"] = capabilities
    response = httpx2.post(base_url, json=body, headers=h, timeout=10)
    session = response.headers.get("mcp-session-id")
    if response.status_code == 200 and session:
        note = {"jsonrpc": "2.0", "method": "notifications/initialized"}
        h2 = {**h, "mcp-session-id": session, "mcp-protocol-version": "2025-11-25"}
        httpx2.post(base_url, json=note, headers=h2, timeout=10).raise_for_status()
    return response


def session_headers(session_id: str, extra: dict[str, str] | None = None) -> dict[str, str]:
    return {**JSON_HEADERS, "mcp-session-id": session_id, "mcp-protocol-version": "2025-11-25", **(extra or {})}


def metric(base: str, name: str, labels: str = "") -> float:
    """A sample's value from /metrics (0 when absent)."""
    text = httpx2.get(f"{base}/metrics", timeout=5).text
    wanted = f"{name}{{{labels}}}" if labels else name
    for line in text.splitlines():
        if line.startswith(wanted + " "):
            return float(line.split()[-1])
    return 0.0
