"""Benchmarks of the redis backend beside the memory backend, and a failover run.

    python -m bench.redis_bench [--passes 3] [--seconds 10] [--only throughput,sessions,memory,failover]

- throughput: `tools/call add` at 1, 8 and 32 connections, both eras, one replica with the memory backend
  against one replica with the redis backend (runtime defaults otherwise), both running side by side on the
  server core and loaded in turn a second at a time (`interleaved_throughput`), with the Redis commands each
  call costs; redis-server is pinned to the load generator's core, as if it ran on another machine.
- sessions: sessions opened per second.
- memory: Redis bytes (INFO used_memory) and replica resident bytes per idle handshake-era session.
- failover: 3 replicas on one Redis, a round-robin balancer that skips refused connections (as a balancer
  with passive health checks does), 8 concurrent clients calling `session_increment` on 64 sessions; one
  replica is killed with SIGKILL mid-run and started again. Counts failed calls, 404s and lost sessions
  (a session whose counter no longer matches the calls that succeeded on it).
Results go to bench/results/redis.json.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import itertools
import json
import os
import platform
import signal
import statistics
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx2

from bench.harness import LOADGEN_CPU, add_comparison_arguments, baseline_env, start_runtime
from bench.runtime_bench import MANY, RESULTS, idle_memory, interleaved_pass, sessions_per_second
from tests.support.raw import JSON_HEADERS
from tests.support.redis_server import RedisServer, start_redis


def structured_result(text: str) -> int:
    """The integer a tool returned, from an SSE or JSON answer."""
    data = next((line[5:] for line in text.splitlines() if line.startswith("data:") and line[5:].strip()), text)
    return int(json.loads(data)["result"]["structuredContent"]["result"])


BENCH_KEYS = "bench-request-state-key-0123456789abcdef"


def redis_env(server: RedisServer) -> dict[str, str]:
    return {"MCP_SESSION_BACKEND": "redis", "MCP_REDIS_URL": server.url, "MCP_REQUEST_STATE_KEYS": BENCH_KEYS}


def redis_commands(server: RedisServer) -> dict[str, int]:
    """How many times Redis has run each command (INFO commandstats): read around a cell, the commands a call
    costs on Redis (the memory backend's cells show what the benchmark's own sessions cost: nothing)."""
    stats: dict[str, Any] = server.client().info("commandstats")
    return {name.removeprefix("cmdstat_"): int(value["calls"]) for name, value in stats.items()}


def used_memory(server: RedisServer) -> int:
    info: dict[str, Any] = server.client().info("memory")
    return int(info["used_memory"])


def marginal_replica_memory(server: RedisServer, first: int, more: int) -> dict[str, Any]:
    """Resident bytes a replica keeps per additional idle session: RSS after `first` sessions and after
    `first + more`, each time after the idle window; the slope leaves out the constant high-water of the
    transports alive while sessions were being opened."""
    replica = start_runtime("runtime-redis", {**redis_env(server), **MANY})
    try:
        a = idle_memory(replica, first, 15.0, with_get=False)
        b = idle_memory(replica, more, 15.0, with_get=False)
        rss_a, rss_b = a["rss_idle_mb"] * 2**20, b["rss_idle_mb"] * 2**20
        return {
            "first": first,
            "more": more,
            "rss_after_first_mb": a["rss_idle_mb"],
            "rss_after_more_mb": b["rss_idle_mb"],
            "marginal_bytes_per_session": (rss_b - rss_a) / more,
        }
    finally:
        replica.stop()


def redis_memory(server: RedisServer, count: int) -> dict[str, Any]:
    replica = start_runtime("runtime-redis", {**redis_env(server), **MANY})
    try:
        before = used_memory(server)
        result = idle_memory(replica, count, 30.0, with_get=False)
        result["redis_bytes_per_session"] = (used_memory(server) - before) / count
        result["redis_keys"] = server.client().dbsize()
        return result
    finally:
        replica.stop()


async def failover(server: RedisServer, seconds: float) -> dict[str, Any]:
    replicas = [start_runtime(f"failover-{i}", redis_env(server)) for i in range(3)]
    ports = [r.port for r in replicas]
    rr = itertools.cycle(range(3))
    stats: dict[str, Any] = {"calls": 0, "failed": 0, "not_found": 0, "retried_connect": 0}
    counts: dict[str, int] = {}
    kinds: Counter[str] = Counter()
    call = {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "session_increment", "arguments": {}}}

    async def post(client: httpx2.AsyncClient, session: str | None, body: dict[str, Any]) -> httpx2.Response:
        headers = dict(JSON_HEADERS)
        if session:
            headers |= {"mcp-session-id": session, "mcp-protocol-version": "2025-11-25"}
        start = next(rr)
        for attempt in range(3):
            port = ports[(start + attempt) % 3]
            try:
                return await client.post(f"http://127.0.0.1:{port}/mcp", json=body, headers=headers)
            except httpx2.ConnectError:
                stats["retried_connect"] += 1
        raise httpx2.ConnectError("no replica accepted the connection")

    # A new connection a request, as a balancer that spreads requests does: a refused connection is retried
    # on the next replica, so only requests already sent to the killed replica can fail.
    limits = httpx2.Limits(max_keepalive_connections=0)
    async with httpx2.AsyncClient(timeout=30, limits=limits) as client:
        sessions = []
        for _ in range(64):
            init = {
                "jsonrpc": "2.0",
                "id": 0,
                "method": "initialize",
                "params": {
                    "protocolVersion": "2025-11-25",
                    "capabilities": {},
                    "clientInfo": {"name": "bench", "version": "0"},
                },
            }
            response = await post(client, None, init)
            session = response.headers["mcp-session-id"]
            await post(client, session, {"jsonrpc": "2.0", "method": "notifications/initialized"})
            sessions.append(session)
            counts[session] = 0
        queue = itertools.cycle(sessions)
        deadline = time.monotonic() + seconds
        killed_at = time.monotonic() + seconds / 3
        restarted_at = time.monotonic() + 2 * seconds / 3
        busy: set[str] = set()

        async def worker() -> None:
            while time.monotonic() < deadline:
                session = next(queue)
                if session in busy:
                    await asyncio.sleep(0)
                    continue
                busy.add(session)
                try:
                    response = await post(client, session, call)
                    stats["calls"] += 1
                    if response.status_code == 404:
                        stats["not_found"] += 1
                    elif response.status_code == 200 and '"isError":false' in response.text.replace(" ", ""):
                        counts[session] += 1
                    else:
                        stats["failed"] += 1
                        kinds[f"status {response.status_code}"] += 1
                except httpx2.HTTPError as error:
                    stats["calls"] += 1
                    stats["failed"] += 1
                    kinds[type(error).__name__] += 1
                finally:
                    busy.discard(session)

        async def chaos() -> None:
            await asyncio.sleep(max(0.0, killed_at - time.monotonic()))
            replicas[1].process.send_signal(signal.SIGKILL)
            replicas[1].process.wait()
            await asyncio.sleep(max(0.0, restarted_at - time.monotonic()))
            replicas[1] = start_runtime("failover-1-again", redis_env(server))
            ports[1] = replicas[1].port

        await asyncio.gather(chaos(), *(worker() for _ in range(8)))
        lost = ahead = 0
        for session in sessions:  # each session must still exist and hold every increment that succeeded
            response = await post(client, session, call)
            if response.status_code != 200:
                lost += 1
                continue
            value = structured_result(response.text)
            if value < counts[session] + 1:
                lost += 1  # an acknowledged increment is gone
            elif value > counts[session] + 1:
                ahead += 1  # a call that failed on the killed replica had been applied before it died
    stats["sessions_with_applied_failed_call"] = ahead
    stats["failures_by_kind"] = dict(kinds)
    for replica in replicas:
        replica.stop()
    return {**stats, "sessions": len(sessions), "lost_sessions": lost, "seconds": seconds}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--passes", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--only", default="throughput,sessions,memory,marginal,failover")
    parser.add_argument("--memory-sessions", type=int, default=2000)
    parser.add_argument("--merge", action="store_true", help="update bench/results/redis.json with what runs")
    add_comparison_arguments(
        parser, "redis.json", "compares runtime-redis with runtime-redis-baseline instead of the memory backend"
    )
    args = parser.parse_args()
    only = set(args.only.split(","))
    workdir = Path(tempfile.mkdtemp(prefix="mcp-bench-redis-"))
    redis_server = start_redis(workdir / "redis")
    # Redis runs beside the load generator, not on the replica's core: as on another machine, its CPU is not
    # the replica's (and the memory backend's run has no such process).
    assert redis_server.process is not None
    os.sched_setaffinity(redis_server.process.pid, {int(LOADGEN_CPU)})
    results: dict[str, Any] = {
        "machine": f"{platform.node()} {platform.machine()}, {len(os.sched_getaffinity(0))} cores",
        "command": "python -m bench.redis_bench "
        + " ".join(f"--{k.replace('_', '-')} {v}" for k, v in vars(args).items()),
        "started": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
    }
    try:
        starters: dict[str, Any] = {
            "runtime": lambda env: start_runtime("runtime", env),
            "runtime-redis": lambda env: start_runtime("runtime-redis", {**redis_env(redis_server), **env}),
        }
        if args.baseline is not None:
            before = {**baseline_env(args.baseline), **redis_env(redis_server)}
            del starters["runtime"]
            starters["runtime-redis-baseline"] = lambda env: start_runtime("runtime-redis-baseline", {**before, **env})
        results["throughput"] = {name: [] for name in starters}
        results["sessions"] = {name: [] for name in starters}
        for index in range(args.passes):
            order = list(starters) if index % 2 == 0 else list(reversed(starters))
            if "throughput" in only:
                redis_server.client().flushall()  # sessions of earlier runs would count against the caps
                found = interleaved_pass(
                    {name: functools.partial(start, {}) for name, start in starters.items()},
                    args.seconds,
                    index,
                    probe=lambda _name: redis_commands(redis_server),
                )
                for name, cells in found.items():
                    results["throughput"][name].append(cells)
            for name in order:
                if "sessions" in only:
                    redis_server.client().flushall()
                    server = starters[name](MANY)
                    try:
                        results["sessions"][name].append(sessions_per_second(server, args.seconds))
                    finally:
                        server.stop()
                    print(
                        f"pass {index + 1} {name}: sessions {results['sessions'][name][-1]['sessions_per_s']:.0f}/s",
                        flush=True,
                    )
        if "memory" in only:
            redis_server.client().flushall()
            results["memory"] = redis_memory(redis_server, args.memory_sessions)
            print("memory", results["memory"], flush=True)
        if "marginal" in only:
            redis_server.client().flushall()
            results["replica_marginal"] = marginal_replica_memory(redis_server, 2000, 8000)
            print("replica marginal", results["replica_marginal"], flush=True)
        if "failover" in only:
            redis_server.client().flushall()
            results["failover"] = asyncio.run(failover(redis_server, 3 * args.seconds))
            print("failover", results["failover"], flush=True)
    finally:
        redis_server.stop()
    RESULTS.mkdir(exist_ok=True)
    if args.merge and (RESULTS / args.out).exists():
        kept = json.loads((RESULTS / args.out).read_text())
        kept.update({k: v for k, v in results.items() if k in only or (k == "replica_marginal" and "marginal" in only)})
        kept.setdefault("merged", []).append(results["command"])
        results = kept
    (RESULTS / args.out).write_text(json.dumps(results, indent=2))
    for name, passes in results["throughput"].items():
        for key in passes[0] if passes else []:
            rps = statistics.median(p[key]["calls_per_s"] for p in passes)
            p50 = statistics.median(p[key]["p50_us"] for p in passes) / 1e3
            p99 = statistics.median(p[key]["p99_us"] for p in passes) / 1e3
            print(f"| {name} | {key} | {rps:.0f} | {p50:.1f} | {p99:.1f} |")


if __name__ == "__main__":
    main()
