"""Benchmarks of the redis backend behind Sentinels: throughput against memory, WAIT's cost, what a failover
loses with and without WAIT, the time to recover from a primary's death, Redis bytes per idle session.

    python -m bench.sentinel_bench [--passes 3] [--seconds 10] [--trials 3]
        [--only throughput,sessions,loss,recovery,memory]

Real processes on loopback: a redis-server primary with two replicas, three Sentinels (tests/support/redis_sentinel.py),
and mcp-runtime processes that know only the Sentinels. Results go to bench/results/sentinel.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import signal
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx2

from bench.harness import INITIALIZE, Server, start_runtime
from bench.redis_bench import BENCH_KEYS
from bench.runtime_bench import MANY, RESULTS, idle_memory, sessions_per_second, throughput
from tests.support.raw import JSON_HEADERS
from tests.support.redis_sentinel import SentinelGroup, sentinel_group


def sentinel_env(group: SentinelGroup, wait: int) -> dict[str, str]:
    return group.env(MCP_REQUEST_STATE_KEYS=BENCH_KEYS, MCP_REDIS_WAIT_REPLICAS=str(wait))


def compare(group: SentinelGroup, args: argparse.Namespace, only: set[str]) -> dict[str, Any]:
    """Throughput and sessions/s: memory, redis via Sentinels without WAIT, with WAIT 1 (alternating order)."""
    starters = {
        "memory": lambda env: start_runtime("runtime", env),
        "sentinel-wait0": lambda env: start_runtime("sentinel-wait0", {**sentinel_env(group, 0), **env}),
        "sentinel-wait1": lambda env: start_runtime("sentinel-wait1", {**sentinel_env(group, 1), **env}),
    }
    out: dict[str, Any] = {"throughput": {n: [] for n in starters}, "sessions": {n: [] for n in starters}}
    for index in range(args.passes):
        order = list(starters) if index % 2 == 0 else list(reversed(starters))
        for name in order:
            if "throughput" in only:
                group.primary().client().flushall()
                server: Server = starters[name]({})
                try:
                    out["throughput"][name].append(throughput(server, args.seconds))
                finally:
                    server.stop()
                line = ", ".join(f"{k} {v['calls_per_s']:.0f}/s" for k, v in out["throughput"][name][-1].items())
                print(f"pass {index + 1} {name}: {line}", flush=True)
            if "sessions" in only:
                group.primary().client().flushall()
                server = starters[name](MANY)
                try:
                    out["sessions"][name].append(sessions_per_second(server, args.seconds))
                finally:
                    server.stop()
                print(f"pass {index + 1} {name}: sessions {out['sessions'][name][-1]['sessions_per_s']:.0f}/s")
    return out


async def open_sessions_until(url: str, stop: asyncio.Event, acknowledged: list[str], workers: int) -> None:
    """Open sessions as fast as `workers` clients can; a session counts once its initialize answered 200."""

    async def worker() -> None:
        async with httpx2.AsyncClient(timeout=10) as client:
            while not stop.is_set():
                try:
                    response = await client.post(url, json=INITIALIZE, headers=JSON_HEADERS)
                except httpx2.HTTPError:
                    await asyncio.sleep(0.05)
                    continue
                if response.status_code == 200:
                    acknowledged.append(response.headers["mcp-session-id"])
                else:
                    await asyncio.sleep(0.05)

    await asyncio.gather(*(worker() for _ in range(workers)))


def loss_trial(workdir: Path, wait: int, trial: int) -> dict[str, Any]:
    """Sessions acknowledged to clients that the new primary does not have, after kill -9 of the old one."""
    with sentinel_group(workdir / f"loss-{wait}-{trial}") as group:
        runtimes = [start_runtime(f"loss-{i}", {**sentinel_env(group, wait), **MANY}) for i in range(2)]
        try:
            acknowledged: list[str] = []

            async def run() -> float:
                stop = asyncio.Event()
                tasks = [asyncio.create_task(open_sessions_until(r.url, stop, acknowledged, 8)) for r in runtimes]
                await asyncio.sleep(3.0)
                primary = group.primary()
                assert primary.process is not None
                killed = time.monotonic()
                primary.process.send_signal(signal.SIGKILL)
                await asyncio.to_thread(group.wait_new_primary, primary.port)
                await asyncio.sleep(1.0)
                stop.set()
                await asyncio.gather(*tasks)
                return time.monotonic() - killed

            elapsed = asyncio.run(run())
            client = group.primary().client()
            with client.pipeline(transaction=False) as pipe:
                for session in acknowledged:
                    pipe.exists(f"mcp:s:{session}")
                found = pipe.execute()
            lost = sum(1 for f in found if not f)
            return {"wait": wait, "acknowledged": len(acknowledged), "lost": lost, "seconds": round(elapsed, 2)}
        finally:
            for runtime in runtimes:
                runtime.stop()


def recovery_trial(workdir: Path, down_after_ms: int, trial: int) -> dict[str, Any]:
    """Seconds from kill -9 of the primary until a session is served again, polled every 20 ms."""
    with sentinel_group(workdir / f"recovery-{down_after_ms}-{trial}", down_after_ms=down_after_ms) as group:
        runtime = start_runtime("recovery", sentinel_env(group, 1))
        try:
            with httpx2.Client(timeout=10) as http:
                session = http.post(runtime.url, json=INITIALIZE, headers=JSON_HEADERS).headers["mcp-session-id"]
                headers = {**JSON_HEADERS, "mcp-session-id": session, "mcp-protocol-version": "2025-11-25"}
                ping = {"jsonrpc": "2.0", "id": 2, "method": "ping"}
                primary = group.primary()
                assert primary.process is not None
                killed = time.monotonic()
                primary.process.send_signal(signal.SIGKILL)
                failures = 0
                while True:
                    response = http.post(runtime.url, json=ping, headers=headers)
                    if response.status_code == 200 and failures:
                        break
                    if response.status_code != 200:
                        failures += 1
                    elif time.monotonic() - killed > 2 * down_after_ms / 1000 + 10:
                        break  # never failed: nothing touched the primary in time (not expected)
                    time.sleep(0.02)
                served = time.monotonic() - killed
                named = group.wait_new_primary(primary.port)
            return {
                "down_after_ms": down_after_ms,
                "served_again_s": round(served, 2),
                "failed_polls": failures,
                "sentinels_named_s_after_served": round(named, 2),
            }
        finally:
            runtime.stop()


def memory(workdir: Path, count: int) -> dict[str, Any]:
    """Redis bytes per idle handshake-era session on the primary and on a replica (INFO used_memory)."""
    with sentinel_group(workdir / "memory") as group:
        runtime = start_runtime("memory", {**sentinel_env(group, 1), **MANY})
        try:
            primary, replica = group.primary(), group.servers[1]
            before = (primary.client().info("memory")["used_memory"], replica.client().info("memory")["used_memory"])
            result = idle_memory(runtime, count, 30.0, with_get=False)
            group.wait_replicas_in_sync(2)
            time.sleep(1.0)
            after = (primary.client().info("memory")["used_memory"], replica.client().info("memory")["used_memory"])
            result["primary_bytes_per_session"] = (after[0] - before[0]) / count
            result["replica_bytes_per_session"] = (after[1] - before[1]) / count
            result["keys"] = primary.client().dbsize()
            result["replica_keys"] = replica.client().dbsize()
            return result
        finally:
            runtime.stop()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--passes", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--trials", type=int, default=3)
    parser.add_argument("--memory-sessions", type=int, default=2000)
    parser.add_argument("--only", default="throughput,sessions,loss,recovery,memory")
    parser.add_argument("--out", default="sentinel.json")
    args = parser.parse_args()
    only = set(args.only.split(","))
    workdir = Path(tempfile.mkdtemp(prefix="mcp-bench-sentinel-"))
    results: dict[str, Any] = {
        "machine": f"{platform.node()} {platform.machine()}, {len(os.sched_getaffinity(0))} cores",
        "command": "python -m bench.sentinel_bench "
        + " ".join(f"--{k.replace('_', '-')} {v}" for k, v in vars(args).items()),
        "started": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
    }
    if only & {"throughput", "sessions"}:
        with sentinel_group(workdir / "compare") as group:
            results.update(compare(group, args, only))
    if "loss" in only:
        results["loss"] = [loss_trial(workdir, wait, t) for t in range(args.trials) for wait in (0, 1)]
        for row in results["loss"]:
            print("loss", row, flush=True)
    if "recovery" in only:
        results["recovery"] = [recovery_trial(workdir, ms, t) for ms in (1000, 5000) for t in range(args.trials)]
        for row in results["recovery"]:
            print("recovery", row, flush=True)
    if "memory" in only:
        results["memory"] = memory(workdir, args.memory_sessions)
        print("memory", results["memory"], flush=True)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / args.out).write_text(json.dumps(results, indent=2))
    for table in ("throughput",):
        for name, passes in results.get(table, {}).items():
            for key in passes[0] if passes else []:
                rps = statistics.median(p[key]["calls_per_s"] for p in passes)
                p50 = statistics.median(p[key]["p50_us"] for p in passes) / 1e3
                p99 = statistics.median(p[key]["p99_us"] for p in passes) / 1e3
                print(f"| {name} | {key} | {rps:.0f} | {p50:.1f} | {p99:.1f} |")
    for name, passes in results.get("sessions", {}).items():
        if passes:
            print(f"| {name} | sessions/s | {statistics.median(p['sessions_per_s'] for p in passes):.0f} |")


if __name__ == "__main__":
    main()
