"""Starting servers for benchmarks, running wrk against them, reading their CPU and memory.

The server is pinned to CPU 0 and wrk to CPU 1 (`taskset`), so the load generator does not steal the
server's core; the CPU time of both is measured and reported.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx2

from tests.support.procs import free_port, serve_command
from tests.support.raw import JSON_HEADERS, MODERN_META

HERE = Path(__file__).parent
ROOT = HERE.parent
SERVER_CPU = "0"
LOADGEN_CPU = "1"
CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")

ADD_CALL = json.dumps(
    {"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": "add", "arguments": {"a": 1, "b": 2}}},
    separators=(",", ":"),
)
MODERN_ADD_CALL = json.dumps(
    {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "tools/call",
        "params": {"name": "add", "arguments": {"a": 1, "b": 2}, "_meta": MODERN_META},
    },
    separators=(",", ":"),
)
# A call that reports progress once before its answer (the demo's `slow` with no wait): an SSE answer.
PROGRESS_CALL = json.dumps(
    {
        "jsonrpc": "2.0",
        "id": 3,
        "method": "tools/call",
        "params": {"name": "slow", "arguments": {"seconds": 0}, "_meta": {"progressToken": "p"}},
    },
    separators=(",", ":"),
)
INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "bench", "version": "0"}},
}


@dataclass
class Server:
    name: str
    process: subprocess.Popen[bytes]
    port: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/mcp"

    def cpu_seconds(self) -> float:
        fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLK_TCK

    def rss_bytes(self) -> int:
        return int(Path(f"/proc/{self.process.pid}/statm").read_text().split()[1]) * PAGE

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def start_plain(
    name: str, *, access_log: bool, json_response: bool = False, loop: str = "asyncio", http: str = "h11"
) -> Server:
    port = free_port()
    cmd = [sys.executable, "-m", "bench.plain_server", "--port", str(port), "--loop", loop, "--http", http]
    cmd += ["--access-log"] if access_log else []
    cmd += ["--json-response"] if json_response else []
    return _start(name, cmd, port, {})


def start_runtime(name: str, env: dict[str, str]) -> Server:
    port = free_port()
    return _start(name, serve_command(port), port, env)


def _start(name: str, cmd: list[str], port: int, env: dict[str, str]) -> Server:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("MCP_")} | env
    log = open(f"/tmp/bench-{name}-{port}.log", "wb")  # noqa: SIM115 - the server's lifetime, not a block
    process = subprocess.Popen(
        ["taskset", "-c", SERVER_CPU, *cmd], cwd=ROOT, env=full_env, stdout=log, stderr=subprocess.STDOUT
    )
    server = Server(name, process, port)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{name} exited: see {log.name}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return server
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"{name} did not start")


def open_session(url: str, client: httpx2.Client, extra: dict[str, str] | None = None) -> str:
    """initialize and initialized; `extra`: more headers on both (an Authorization header)."""
    response = client.post(url, json=INITIALIZE, headers={**JSON_HEADERS, **(extra or {})})
    response.raise_for_status()
    session = response.headers["mcp-session-id"]
    headers = {**JSON_HEADERS, **(extra or {}), "mcp-session-id": session, "mcp-protocol-version": "2025-11-25"}
    client.post(url, json={"jsonrpc": "2.0", "method": "notifications/initialized"}, headers=headers)
    return session


def check_call(url: str, body: str, headers: dict[str, str]) -> None:
    """One request by hand: the benchmark must measure successful tool calls, not errors."""
    response = httpx2.post(url, content=body, headers={**JSON_HEADERS, **headers}, timeout=10)
    text = response.text.replace(" ", "")
    if response.status_code != 200 or '"result":3' not in text or '"isError":true' in text:
        raise RuntimeError(f"benchmark request failed: {response.status_code} {response.text[:300]}")


def wrk(url: str, script: str, *, connections: int, seconds: float, env: dict[str, str]) -> dict[str, Any]:
    """Run wrk on the load-generator core; its RESULT line, plus the CPU seconds wrk itself used."""
    threads = 1 if connections == 1 else 2
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    cmd = [
        "taskset",
        "-c",
        LOADGEN_CPU,
        _wrk(),
        f"-t{threads}",
        f"-c{connections}",
        f"-d{round(seconds)}s",
        "--timeout",
        "10s",
        "-s",
        str(HERE / "wrk" / script),
        url,
    ]
    done = subprocess.run(cmd, env={**os.environ, **env}, capture_output=True, text=True, timeout=seconds + 60)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    if not lines:
        raise RuntimeError(f"wrk failed: {done.stdout}\n{done.stderr}")
    result: dict[str, Any] = json.loads(lines[-1][7:])
    failed = result["non2xx"] + result["socket_errors"]
    if failed > result["requests"] // 1000:  # measure successful calls, not refusals
        raise RuntimeError(f"wrk: {failed} of {result['requests']} requests failed ({script}, {connections} conns)")
    result["loadgen_cpu_s"] = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return result


def _wrk() -> str:
    path = shutil.which("wrk")
    if path is None:
        raise RuntimeError("wrk is not installed: apt-get install -y wrk")
    return path


def add_comparison_arguments(parser: argparse.ArgumentParser, results_file: str, compared: str) -> None:
    """--baseline (a checkout of an earlier commit, run with its server/ first on PYTHONPATH) and --out."""
    parser.add_argument(
        "--baseline",
        type=Path,
        help=f"a checkout of an earlier commit: {compared}, alternating in the same passes",
    )
    parser.add_argument("--out", default=results_file, help="the results file under bench/results/")


def baseline_env(baseline: Path) -> dict[str, str]:
    """The environment that makes mcp-runtime run the code of the checkout `baseline`."""
    return {"PYTHONPATH": str(baseline.resolve() / "server")}
