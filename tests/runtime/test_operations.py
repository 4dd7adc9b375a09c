"""Probes, metrics, SIGTERM draining, settings errors and structured logs of a real mcp-runtime process."""

from __future__ import annotations

import contextlib
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import anyio
import httpx2

from tests.support.clients import mcp_client
from tests.support.procs import RuntimeProcess, metric, running, spawn, wait_healthy
from tests.support.raw import open_raw_session


def test_probes(runtime: RuntimeProcess) -> None:
    assert httpx2.get(f"{runtime.base}/healthz").status_code == 200
    ready = httpx2.get(f"{runtime.base}/readyz")
    assert ready.status_code == 200 and ready.json() == {"ready": True}


async def test_metrics_count_sessions_and_requests(runtime: RuntimeProcess) -> None:
    async with mcp_client(runtime.url, "handshake") as client:
        await client.call_tool("add", {"a": 1, "b": 2})
        assert metric(runtime.base, "mcp_runtime_sessions_active") == 1
    async with mcp_client(runtime.url, "modern") as client:
        await client.call_tool("add", {"a": 1, "b": 2})
    text = httpx2.get(f"{runtime.base}/metrics").text
    for name in [
        "mcp_runtime_sessions_active",
        "mcp_runtime_sessions_created_total",
        "mcp_runtime_sessions_expired_total",
        "mcp_runtime_sessions_rejected_total",
        "mcp_runtime_request_duration_seconds_bucket",
    ]:
        assert name in text, name
    assert metric(runtime.base, "mcp_runtime_sessions_created_total") == 1
    assert metric(runtime.base, "mcp_runtime_sessions_active") == 0
    assert metric(runtime.base, "mcp_runtime_request_duration_seconds_count", 'era="modern",method="POST"') >= 1
    assert metric(runtime.base, "mcp_runtime_request_duration_seconds_count", 'era="handshake",method="POST"') >= 3


async def test_sigterm_drains_in_flight_work_and_refuses_new_sessions(tmp_path: Path) -> None:
    with running(tmp_path, {"MCP_SHUTDOWN_GRACE_SECONDS": "20"}) as rt:
        results: list[object] = []
        async with mcp_client(rt.url, "handshake") as client:

            async def slow_call() -> None:
                results.append((await client.call_tool("slow", {"seconds": 3})).structured_content)

            async with anyio.create_task_group() as tg:
                tg.start_soon(slow_call)
                await anyio.sleep(0.7)
                rt.signal(signal.SIGTERM)
                await anyio.sleep(0.5)
                assert rt.alive()
                readyz = await anyio.to_thread.run_sync(lambda: httpx2.get(f"{rt.base}/readyz"))
                assert readyz.status_code == 503 and readyz.json()["reason"] == "draining"
                assert (await anyio.to_thread.run_sync(lambda: httpx2.get(f"{rt.base}/healthz"))).status_code == 200
                refused = await anyio.to_thread.run_sync(open_raw_session, rt.url)
                assert refused.status_code == 503 and "retry-after" in refused.headers
                assert "shutting down" in refused.json()["error"]["message"]
        assert results == [{"result": "waited 3s"}]
        assert rt.process.wait(15) == 0
        assert "draining" in rt.log()


def test_sigterm_with_nothing_in_flight_exits_promptly(tmp_path: Path) -> None:
    with running(tmp_path) as rt:
        started = time.monotonic()
        rt.signal(signal.SIGTERM)
        assert rt.process.wait(10) == 0
        assert time.monotonic() - started < 5


async def test_grace_period_bounds_the_drain(tmp_path: Path) -> None:
    with running(tmp_path, {"MCP_SHUTDOWN_GRACE_SECONDS": "1"}) as rt:
        async with mcp_client(rt.url, "modern") as client:

            async def never_finishes() -> None:
                with contextlib.suppress(Exception):
                    await client.call_tool("slow", {"seconds": 60})

            async with anyio.create_task_group() as tg:
                tg.start_soon(never_finishes)
                await anyio.sleep(0.5)
                started = time.monotonic()
                rt.signal(signal.SIGTERM)
                await anyio.to_thread.run_sync(rt.process.wait, 15)
                elapsed = time.monotonic() - started
                tg.cancel_scope.cancel()
        assert 0.9 < elapsed < 8
        assert "grace period over with 1 requests in flight" in rt.log()


def run_cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mcp_runtime.cli", *args], env=env, capture_output=True, text=True, timeout=60
    )


def test_bad_setting_stops_the_process_and_names_the_variable(tmp_path: Path) -> None:
    import os

    base = {k: v for k, v in os.environ.items() if not k.startswith("MCP_")}
    for variable, value in [
        ("MCP_MAX_SESSIONS", "lots"),
        ("MCP_SESSION_TTL_SECONDS", "-5"),
        ("MCP_SESSION_BACKEND", "postgres"),
        ("MCP_AUTH_TOKEN_FILE", str(tmp_path / "missing")),
    ]:
        done = run_cli({**base, variable: value}, "serve", "--app", "mcp_runtime.examples.demo:app", "--port", "1")
        assert done.returncode == 2, (variable, done.stderr)
        assert variable in done.stderr, done.stderr


def test_bad_app_spec_is_a_clear_error() -> None:
    done = run_cli({}, "serve", "--app", "no_such_module:app", "--port", "1")
    assert done.returncode == 2 and "cannot import 'no_such_module'" in done.stderr


def test_settings_command_lists_every_variable() -> None:
    from mcp_runtime.settings import RuntimeSettings

    done = run_cli({}, "settings")
    assert done.returncode == 0
    for name in RuntimeSettings.model_fields:
        assert RuntimeSettings.env_name(name) in done.stdout


def test_json_logs(tmp_path: Path) -> None:
    proc = spawn(tmp_path, {"MCP_LOG_FORMAT": "json", "MCP_REPLICA_NAME": "json-replica"})
    try:
        wait_healthy(proc)
        assert open_raw_session(proc.url).status_code == 200
    finally:
        proc.stop()
    lines = [line for line in proc.log().splitlines() if line.strip()]
    entries = [json.loads(line) for line in lines]
    assert all({"time", "level", "logger", "message"} <= e.keys() for e in entries)
    assert any(e["message"] == "session opened" and e["replica"] == "json-replica" for e in entries)
