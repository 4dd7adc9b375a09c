"""Benchmarks of mcp-runtime's memory backend against the stock `MCPServer.streamable_http_app()`.

    python -m bench.runtime_bench [--passes 3] [--seconds 10] [--only throughput,sessions,memory]

Scenarios (each server one uvicorn worker, pinned to CPU 0; wrk pinned to CPU 1):
- throughput: `tools/call add` at 1, 8 and 32 connections, handshake era (32 sessions, requests spread over
  them) and 2026-07-28; calls/s, p50/p99, server and load-generator CPU. `handshake-progress`: a handshake-era
  call that reports progress once before it answers (so its answer is an SSE stream).
- sessions: sessions opened per second (initialize + notifications/initialized), 8 connections.
- memory: resident memory per idle handshake-era session, with and without a GET stream held open.

Servers compared: for throughput all running side by side, loaded in turn a second at a time
(`interleaved_throughput`), so drift hits every server alike; the other scenarios alternate within each pass:
- plain-stock: the stock app as `app.run("streamable-http")` runs it on `pip install mcp` (asyncio, h11,
  access log on).
- plain: the stock app with the access log off (the settings runtime-same uses).
- runtime-same: mcp-runtime with asyncio, h11, no access log and Python's default GC threshold.
- runtime: mcp-runtime under its own defaults.
Results go to bench/results/runtime.json; docs/benchmarks.md quotes them.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import statistics
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx2

from bench.harness import (
    ADD_CALL,
    MODERN_ADD_CALL,
    PROGRESS_CALL,
    Server,
    add_comparison_arguments,
    baseline_env,
    check_call,
    open_session,
    start_plain,
    start_runtime,
    wrk,
)
from tests.support.raw import JSON_HEADERS, MODERN_HEADERS

RESULTS = Path(__file__).parent / "results"
CONCURRENCY = (1, 8, 32)
RUNTIME_SAME = {"MCP_EVENT_LOOP": "asyncio", "MCP_HTTP_PARSER": "h11", "MCP_GC_THRESHOLD": "0"}
MANY = {"MCP_MAX_SESSIONS": "1000000", "MCP_MAX_SESSIONS_PER_CLIENT": "1000000"}

SERVERS: dict[str, Callable[[], Server]] = {
    "plain-stock": lambda: start_plain("plain-stock", access_log=True),
    "plain": lambda: start_plain("plain", access_log=False),
    "runtime-same": lambda: start_runtime("runtime-same", RUNTIME_SAME),
    "runtime": lambda: start_runtime("runtime", {}),
}


def workloads(server: Server, auth: dict[str, str] | None = None) -> dict[str, dict[str, str]]:
    """The wrk environment of each era's `tools/call add` against `server` (32 handshake-era sessions opened
    on it, one call of each era checked first); `auth`: headers every request carries (a token)."""
    auth = auth or {}
    with httpx2.Client(timeout=10) as client:
        sessions = [open_session(server.url, client, auth) for _ in range(32)]
    session_headers = {"mcp-protocol-version": "2025-11-25", **auth}
    modern_headers = {**MODERN_HEADERS, **auth}
    check_call(server.url, ADD_CALL, {**session_headers, "mcp-session-id": sessions[0]})
    check_call(server.url, MODERN_ADD_CALL, modern_headers)
    handshake = {
        "MCP_SESSIONS": ",".join(sessions),
        "MCP_HEADERS": "|".join(f"{k}:{v}" for k, v in session_headers.items()),
    }
    return {
        "handshake": {"MCP_BODY": ADD_CALL, **handshake},
        "handshake-progress": {"MCP_BODY": PROGRESS_CALL, **handshake},
        "modern": {"MCP_BODY": MODERN_ADD_CALL, "MCP_HEADERS": "|".join(f"{k}:{v}" for k, v in modern_headers.items())},
    }


def cell(server: Server, env: dict[str, str], connections: int, seconds: float) -> dict[str, Any]:
    """One throughput cell: 2 s of warm-up, then `seconds` measured."""
    wrk(server.url, "mcp_post.lua", connections=connections, seconds=2, env=env)
    cpu0 = server.cpu_seconds()
    result = wrk(server.url, "mcp_post.lua", connections=connections, seconds=seconds, env=env)
    result["server_cpu_s"] = server.cpu_seconds() - cpu0
    result["calls_per_s"] = result["requests"] / (result["duration_us"] / 1e6)
    return result


def throughput(server: Server, seconds: float, auth: dict[str, str] | None = None) -> dict[str, Any]:
    """`tools/call add` in both eras at each concurrency; `auth`: headers every request carries (a token)."""
    eras = workloads(server, auth)
    return {
        f"{era}/c{connections}": cell(server, env, connections, seconds)
        for era, env in eras.items()
        for connections in CONCURRENCY
    }


def interleaved_throughput(
    servers: dict[str, Server], seconds: float, flip: bool, probe: Callable[[str], dict[str, int]] | None = None
) -> dict[str, dict[str, Any]]:
    """`throughput` of several servers running side by side (one loaded at a time), in one-second slices: each
    cell warms every server up, then loads them in turn a second at a time, `seconds` slices each, the order
    flipped from one round to the next (and from one pass to the next with `flip`), so a slow second of the
    machine hits every server alike. A cell's calls/s is its requests over the slices' time; p50 and p99 are
    the medians of the slices'. `probe(name)`: counters read around each of that server's slices; their
    growth per measured call is kept as the cell's `per_call`."""
    eras = {name: workloads(server) for name, server in servers.items()}
    out: dict[str, dict[str, Any]] = {name: {} for name in servers}
    names = list(servers)
    for era in eras[names[0]]:
        for connections in CONCURRENCY:
            for name in names:
                wrk(servers[name].url, "mcp_post.lua", connections=connections, seconds=2, env=eras[name][era])
            slices: dict[str, list[dict[str, Any]]] = {name: [] for name in names}
            grown: dict[str, Counter[str]] = {name: Counter() for name in names}
            for index in range(max(1, round(seconds))):
                for name in reversed(names) if (index % 2 == 1) != flip else names:
                    server = servers[name]
                    before = probe(name) if probe else {}
                    cpu0 = server.cpu_seconds()
                    result = wrk(server.url, "mcp_post.lua", connections=connections, seconds=1, env=eras[name][era])
                    result["server_cpu_s"] = server.cpu_seconds() - cpu0
                    after = probe(name) if probe else {}
                    grown[name].update({k: v - before.get(k, 0) for k, v in after.items()})
                    slices[name].append(result)
            for name in names:
                out[name][f"{era}/c{connections}"] = merged(slices[name], grown[name])
    return out


def interleaved_pass(
    starters: dict[str, Callable[[], Server]],
    seconds: float,
    index: int,
    probe: Callable[[str], dict[str, int]] | None = None,
) -> dict[str, dict[str, Any]]:
    """Pass `index` of `interleaved_throughput`: every server started, measured side by side, stopped."""
    servers: dict[str, Server] = {}
    try:
        for name, start in starters.items():
            servers[name] = start()
        found = interleaved_throughput(servers, seconds, flip=index % 2 == 1, probe=probe)
    finally:
        for server in servers.values():
            server.stop()
    for name, cells in found.items():
        print(
            f"pass {index + 1} {name}: " + ", ".join(f"{k} {v['calls_per_s']:.0f}/s" for k, v in cells.items()),
            flush=True,
        )
    return found


def merged(slices: list[dict[str, Any]], grown: Counter[str]) -> dict[str, Any]:
    """One cell's result from its slices (see `interleaved_throughput`)."""
    requests = sum(s["requests"] for s in slices)
    duration = sum(s["duration_us"] for s in slices)
    return {
        "requests": requests,
        "duration_us": duration,
        "calls_per_s": requests / (duration / 1e6),
        "p50_us": statistics.median(s["p50_us"] for s in slices),
        "p99_us": statistics.median(s["p99_us"] for s in slices),
        "server_cpu_s": sum(s["server_cpu_s"] for s in slices),
        "loadgen_cpu_s": sum(s["loadgen_cpu_s"] for s in slices),
        "slices_calls_per_s": [s["requests"] / (s["duration_us"] / 1e6) for s in slices],
        "per_call": {k: v / requests for k, v in grown.items() if v},
    }


def sessions_per_second(server: Server, seconds: float) -> dict[str, Any]:
    cpu0 = server.cpu_seconds()
    result = wrk(server.url, "open_sessions.lua", connections=8, seconds=seconds, env={})
    result["server_cpu_s"] = server.cpu_seconds() - cpu0
    result["sessions_per_s"] = result["opened"] / (result["duration_us"] / 1e6)
    return result


async def _hold_get_streams(port: int, sessions: list[str]) -> list[asyncio.StreamWriter]:
    writers = []
    for session in sessions:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(
            f"GET /mcp HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAccept: text/event-stream\r\n"
            f"Mcp-Session-Id: {session}\r\nMcp-Protocol-Version: 2025-11-25\r\n\r\n".encode()
        )
        await writer.drain()
        status = await reader.readline()
        if b" 200 " not in status:
            raise RuntimeError(f"GET stream refused: {status!r}")
        writers.append(writer)
    return writers


def idle_memory(server: Server, count: int, settle: float, with_get: bool) -> dict[str, Any]:
    """Open `count` sessions the way the SDK client does (initialize, initialized, a call, tools/list)."""
    time.sleep(1.0)
    with httpx2.Client(timeout=10) as client:
        for _ in range(20):  # warm every code path before the baseline
            open_session(server.url, client)
        time.sleep(1.0)
        base = server.rss_bytes()
        sessions = []
        for _ in range(count):
            session = open_session(server.url, client)
            headers = {**JSON_HEADERS, "mcp-session-id": session, "mcp-protocol-version": "2025-11-25"}
            client.post(server.url, content=ADD_CALL, headers=headers).raise_for_status()
            client.post(server.url, json={"jsonrpc": "2.0", "id": 3, "method": "tools/list"}, headers=headers)
            sessions.append(session)
    loop = asyncio.new_event_loop()
    writers = loop.run_until_complete(_hold_get_streams(server.port, sessions)) if with_get else []
    peak = server.rss_bytes()
    time.sleep(settle)
    after = server.rss_bytes()
    for writer in writers:
        writer.close()
    loop.close()
    return {
        "sessions": count,
        "get_streams": with_get,
        "rss_base_mb": base / 2**20,
        "rss_peak_mb": peak / 2**20,
        "rss_idle_mb": after / 2**20,
        "bytes_per_idle_session": (after - base) / count,
    }


def median_of(passes: list[dict[str, Any]], key: str, field: str) -> float:
    return float(statistics.median(p[key][field] for p in passes))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--passes", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--only", default="throughput,sessions,memory")
    parser.add_argument("--servers", default=",".join(SERVERS))
    parser.add_argument("--memory-sessions", type=int, default=2000)
    parser.add_argument("--settle", type=float, default=30.0, help="idle seconds before memory is read")
    add_comparison_arguments(parser, "runtime.json", "adds server runtime-baseline, the runtime of that commit")
    args = parser.parse_args()
    if args.baseline is not None:
        baseline = baseline_env(args.baseline)
        SERVERS["runtime-baseline"] = lambda: start_runtime("runtime-baseline", baseline)
    only = set(args.only.split(","))
    names = args.servers.split(",")
    results: dict[str, Any] = {
        "machine": f"{platform.node()} {platform.processor() or platform.machine()}, "
        f"{len(__import__('os').sched_getaffinity(0))} cores",
        "command": "python -m bench.runtime_bench "
        + " ".join(f"--{k.replace('_', '-')} {v}" for k, v in vars(args).items()),
        "started": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
        "throughput": {n: [] for n in names},
        "sessions": {n: [] for n in names},
        "memory": {},
    }
    for index in range(args.passes):
        order = names if index % 2 == 0 else list(reversed(names))
        if "throughput" in only:
            found = interleaved_pass({name: SERVERS[name] for name in names}, args.seconds, index)
            for name, cells in found.items():
                results["throughput"][name].append(cells)
        for name in order:
            if "sessions" in only:
                server = (
                    SERVERS[name]()
                    if name.startswith("plain")
                    else start_runtime(name, {**start_env(name, args.baseline), **MANY})
                )
                try:
                    results["sessions"][name].append(sessions_per_second(server, args.seconds))
                finally:
                    server.stop()
                print(
                    f"pass {index + 1} {name}: sessions {results['sessions'][name][-1]['sessions_per_s']:.0f}/s",
                    flush=True,
                )
    if "memory" in only:
        for name in ("plain-stock", "runtime"):
            for with_get in (False, True):
                server = SERVERS[name]() if name.startswith("plain") else start_runtime(name, MANY)
                try:
                    key = f"{name}/{'get' if with_get else 'no-get'}"
                    results["memory"][key] = idle_memory(server, args.memory_sessions, args.settle, with_get)
                    print(key, results["memory"][key], flush=True)
                finally:
                    server.stop()
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / args.out).write_text(json.dumps(results, indent=2, default=str))
    print(summary(results))


def start_env(name: str, baseline: Path | None) -> dict[str, str]:
    if name == "runtime-same":
        return RUNTIME_SAME
    if name == "runtime-baseline" and baseline is not None:
        return baseline_env(baseline)
    return {}


def summary(results: dict[str, Any]) -> str:
    lines = [
        "| server | scenario | calls/s | p50 ms | p99 ms | server CPU ms/call | wrk CPU ms/call |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, passes in results["throughput"].items():
        if not passes:
            continue
        for key in passes[0]:
            rps = median_of(passes, key, "calls_per_s")
            cpu = statistics.median(p[key]["server_cpu_s"] / p[key]["requests"] * 1e3 for p in passes)
            lg = statistics.median(p[key]["loadgen_cpu_s"] / p[key]["requests"] * 1e3 for p in passes)
            lines.append(
                f"| {name} | {key} | {rps:.0f} | {median_of(passes, key, 'p50_us') / 1e3:.1f} | "
                f"{median_of(passes, key, 'p99_us') / 1e3:.1f} | {cpu:.2f} | {lg:.3f} |"
            )
    for name, passes in results["sessions"].items():
        if passes:
            rate = statistics.median(p["sessions_per_s"] for p in passes)
            cpu = statistics.median(p["server_cpu_s"] / max(1, p["opened"]) * 1e3 for p in passes)
            lines.append(f"| {name} | sessions opened | {rate:.0f}/s | | | {cpu:.2f} per session | |")
    for key, m in results["memory"].items():
        lines.append(f"| {key} | idle memory | {m['bytes_per_idle_session'] / 1024:.1f} KB/session | | | | |")
    return "\n".join(lines + ratios(results))


def ratios(results: dict[str, Any], base: str = "plain-stock") -> list[str]:
    """Each server's medians over the stock app's, cell by cell (the issue's measure)."""
    stock = results["throughput"].get(base)
    lines = ["", f"| server | scenario | x {base} |", "|---|---|---|"]
    for name, passes in results["throughput"].items():
        if name == base or not passes or not stock:
            continue
        for key in passes[0]:
            if key in stock[0]:
                ratio = median_of(passes, key, "calls_per_s") / median_of(stock, key, "calls_per_s")
                lines.append(f"| {name} | {key} | {ratio:.2f}x |")
    stock_sessions = results["sessions"].get(base)
    for name, passes in results["sessions"].items():
        if name != base and passes and stock_sessions:
            rate = statistics.median(p["sessions_per_s"] for p in passes)
            ratio = rate / statistics.median(p["sessions_per_s"] for p in stock_sessions)
            lines.append(f"| {name} | sessions opened | {ratio:.2f}x |")
    memory = results["memory"]
    for key, m in memory.items():
        server, _, rest = key.partition("/")
        stock_key = f"{base}/{rest}"
        if server != base and stock_key in memory:
            ratio = m["bytes_per_idle_session"] / memory[stock_key]["bytes_per_idle_session"]
            lines.append(f"| {server} | idle memory {rest} | {ratio:.2f}x |")
    return lines if len(lines) > 3 else []


if __name__ == "__main__":
    main()
