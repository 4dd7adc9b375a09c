"""Server CPU per handshake-era call, one call at a time on one session (redis backend): a steadier figure than
calls/s on a noisy machine, and the setup to profile a call with py-spy.

    python -m bench.call_cpu [--server-dir DIR] [--calls 4000] [--profile OUT.txt]

`--server-dir` runs the runtime from another checkout's `server/` (a baseline); `--profile` records the server
with `py-spy record --format raw` while the calls run (py-spy must be on PATH or given by PY_SPY).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx2

from bench.redis_bench import BENCH_KEYS
from tests.support.procs import DEMO_APP, free_port
from tests.support.raw import open_raw_session, session_headers, tool_call
from tests.support.redis_server import start_redis


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().split(")")[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--server-dir", default=str(Path(__file__).parents[1] / "server"))
    parser.add_argument("--calls", type=int, default=4000)
    parser.add_argument("--profile", default=None)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="call-cpu-"))
    redis = start_redis(work / "redis")
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("MCP_")}
    env.update(
        PYTHONPATH=args.server_dir,
        MCP_SESSION_BACKEND="redis",
        MCP_REDIS_URL=redis.url,
        MCP_REQUEST_STATE_KEYS=BENCH_KEYS,
    )
    command = [sys.executable, "-m", "mcp_runtime.cli", "serve", "--app", DEMO_APP, "--host", "127.0.0.1"]
    with (work / "runtime.log").open("wb") as log:
        server = subprocess.Popen([*command, "--port", str(port)], env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        url = f"http://127.0.0.1:{port}/mcp"
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx2.get(f"http://127.0.0.1:{port}/healthz", timeout=1)
                break
            except httpx2.HTTPError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        headers = session_headers(open_raw_session(url).headers["mcp-session-id"])
        profiler = None
        with httpx2.Client(timeout=10) as client:
            for n in range(300):  # warm every path first
                client.post(url, json=tool_call(n, "add", {"a": 1, "b": 2}), headers=headers)
            if args.profile:
                spy = os.environ.get("PY_SPY") or shutil.which("py-spy") or "py-spy"
                record = [spy, "record", "--pid", str(server.pid), "--format", "raw", "-r", "400", "-o", args.profile]
                profiler = subprocess.Popen(record, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                time.sleep(1)
            cpu0, wall0 = cpu_seconds(server.pid), time.monotonic()
            for n in range(args.calls):
                response = client.post(url, json=tool_call(1000 + n, "add", {"a": 1, "b": 2}), headers=headers)
                response.raise_for_status()
            cpu1, wall1 = cpu_seconds(server.pid), time.monotonic()
        if profiler is not None:
            profiler.send_signal(2)
            profiler.wait(30)
        print(
            f"{args.server_dir}: {1000 * (cpu1 - cpu0) / args.calls:.3f} ms server CPU per call, "
            f"{1000 * (wall1 - wall0) / args.calls:.3f} ms wall per call ({args.calls} calls)"
        )
    finally:
        server.terminate()
        server.wait(15)
        redis.stop()


if __name__ == "__main__":
    main()
