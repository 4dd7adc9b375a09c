"""The runtime under several generation-0 collector thresholds (MCP_GC_THRESHOLD), side by side.

    python -m bench.gc_bench [--passes 2] [--seconds 4] [--thresholds 0,5000,50000]

- throughput: the runtime benchmark's cells (`interleaved_throughput`: every threshold's replica running side
  by side, loaded in turn a second at a time); calls/s and p50/p99 latency, where a collector pause shows;
- sessions: sessions opened per second (8 connections, sessions piling up), alternating, with their p99;
- pauses: one client calling `add` in one handshake-era session, one call after the other on one connection,
  each call's latency taken by the client (a collector pause shows whole in its slowest calls).
Results go to bench/results/gc.json.
"""

from __future__ import annotations

import argparse
import http.client
import json
import statistics
import time
from collections.abc import Callable
from typing import Any

import httpx2

from bench.harness import ADD_CALL, Server, open_session, start_runtime
from bench.runtime_bench import MANY, RESULTS, interleaved_pass, sessions_per_second


def pauses(server: Server, calls: int) -> dict[str, Any]:
    """`calls` sequential calls: their latency percentiles and the slowest, in ms."""
    with httpx2.Client(timeout=10) as client:
        session = open_session(server.url, client)
    headers = {
        "content-type": "application/json",
        "accept": "application/json, text/event-stream",
        "mcp-session-id": session,
        "mcp-protocol-version": "2025-11-25",
    }
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    taken = []
    for index in range(calls):
        body = ADD_CALL.replace('"id":2', f'"id":{index + 10}')
        started = time.perf_counter()
        connection.request("POST", "/mcp", body, headers)
        response = connection.getresponse()
        response.read()
        if response.status != 200:
            raise RuntimeError(f"call {index} answered {response.status}")
        taken.append((time.perf_counter() - started) * 1e3)
    connection.close()
    taken.sort()
    return {
        "calls": calls,
        "p50_ms": taken[calls // 2],
        "p99_ms": taken[int(calls * 0.99)],
        "p999_ms": taken[int(calls * 0.999)],
        "max_ms": taken[-1],
        "over_5ms": sum(t > 5 for t in taken),
        "seconds": sum(taken) / 1e3,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--passes", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=4)
    parser.add_argument("--thresholds", default="0,5000,50000")
    parser.add_argument("--pause-calls", type=int, default=20_000)
    parser.add_argument("--only", default="throughput,sessions,pauses")
    parser.add_argument("--out", default="gc.json")
    args = parser.parse_args()
    thresholds = args.thresholds.split(",")
    names = {t: f"gc-{t}" for t in thresholds}
    results: dict[str, Any] = {
        "command": "python -m bench.gc_bench " + " ".join(f"--{k} {v}" for k, v in vars(args).items()),
        "started": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
        "throughput": {name: [] for name in names.values()},
        "sessions": {name: [] for name in names.values()},
        "pauses": {name: [] for name in names.values()},
    }

    def starter(threshold: str, extra: dict[str, str]) -> Callable[[], Server]:
        return lambda: start_runtime(names[threshold], {"MCP_GC_THRESHOLD": threshold, **extra})

    only = set(args.only.split(","))
    for index in range(args.passes):
        if "throughput" in only:
            found = interleaved_pass({names[t]: starter(t, {}) for t in thresholds}, args.seconds, index)
            for name, cells in found.items():
                results["throughput"][name].append(cells)
        for threshold in thresholds if index % 2 == 0 else list(reversed(thresholds)):
            name = names[threshold]
            if "sessions" in only:
                server = starter(threshold, MANY)()
                try:
                    opened = sessions_per_second(server, args.seconds)
                finally:
                    server.stop()
                results["sessions"][name].append(opened)
                print(f"pass {index + 1} {name}: sessions {opened['sessions_per_s']:.0f}/s", flush=True)
            if "pauses" in only:
                server = starter(threshold, {})()
                try:
                    results["pauses"][name].append(pauses(server, args.pause_calls))
                finally:
                    server.stop()
                print(f"pass {index + 1} {name}: pauses {results['pauses'][name][-1]}", flush=True)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / args.out).write_text(json.dumps(results, indent=2))
    print("| threshold | scenario | calls/s | p50 ms | p99 ms |\n|---|---|---|---|---|")
    for name, passes in results["throughput"].items():
        for cell in passes[0] if passes else []:
            rate = statistics.median(p[cell]["calls_per_s"] for p in passes)
            p50 = statistics.median(p[cell]["p50_us"] for p in passes) / 1e3
            p99 = statistics.median(p[cell]["p99_us"] for p in passes) / 1e3
            print(f"| {name} | {cell} | {rate:.0f} | {p50:.2f} | {p99:.1f} |")
    for name, passes in results["sessions"].items():
        if not passes:
            continue
        rate = statistics.median(p["sessions_per_s"] for p in passes)
        p99 = statistics.median(p["p99_us"] for p in passes) / 1e3
        print(f"| {name} | sessions opened | {rate:.0f}/s | | {p99:.1f} |")

    for name, passes in results["pauses"].items():
        if passes:
            fields = ("p50_ms", "p99_ms", "p999_ms", "max_ms", "over_5ms")
            print(
                f"| {name} | one call after another | "
                + ", ".join(f"{f} {statistics.median(p[f] for p in passes):.2f}" for f in fields)
                + " |"
            )


if __name__ == "__main__":
    main()
