"""The runtime under several generation-0 collector thresholds (MCP_GC_THRESHOLD), side by side.

    python -m bench.gc_bench [--passes 2] [--seconds 4] [--thresholds 0,5000,50000]

- throughput: the runtime benchmark's cells (`interleaved_throughput`: every threshold's replica running side
  by side, loaded in turn a second at a time); calls/s and p50/p99 latency, where a collector pause shows;
- sessions: sessions opened per second (8 connections, sessions piling up), alternating, with their p99.
Results go to bench/results/gc.json.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from typing import Any

from bench.harness import start_runtime
from bench.runtime_bench import MANY, RESULTS, interleaved_pass, sessions_per_second


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--passes", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=4)
    parser.add_argument("--thresholds", default="0,5000,50000")
    parser.add_argument("--out", default="gc.json")
    args = parser.parse_args()
    thresholds = args.thresholds.split(",")
    names = {t: f"gc-{t}" for t in thresholds}
    results: dict[str, Any] = {
        "command": "python -m bench.gc_bench " + " ".join(f"--{k} {v}" for k, v in vars(args).items()),
        "started": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
        "throughput": {name: [] for name in names.values()},
        "sessions": {name: [] for name in names.values()},
    }

    def starter(threshold: str, extra: dict[str, str]) -> Any:
        return lambda: start_runtime(names[threshold], {"MCP_GC_THRESHOLD": threshold, **extra})

    for index in range(args.passes):
        found = interleaved_pass({names[t]: starter(t, {}) for t in thresholds}, args.seconds, index)
        for name, cells in found.items():
            results["throughput"][name].append(cells)
        for threshold in thresholds if index % 2 == 0 else list(reversed(thresholds)):
            server = starter(threshold, MANY)()
            try:
                opened = sessions_per_second(server, args.seconds)
            finally:
                server.stop()
            results["sessions"][names[threshold]].append(opened)
            print(f"pass {index + 1} {names[threshold]}: sessions {opened['sessions_per_s']:.0f}/s", flush=True)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / args.out).write_text(json.dumps(results, indent=2))
    print("| threshold | scenario | calls/s | p50 ms | p99 ms |\n|---|---|---|---|---|")
    for name, passes in results["throughput"].items():
        for cell in passes[0]:
            rate = statistics.median(p[cell]["calls_per_s"] for p in passes)
            p50 = statistics.median(p[cell]["p50_us"] for p in passes) / 1e3
            p99 = statistics.median(p[cell]["p99_us"] for p in passes) / 1e3
            print(f"| {name} | {cell} | {rate:.0f} | {p50:.2f} | {p99:.1f} |")
    for name, passes in results["sessions"].items():
        rate = statistics.median(p["sessions_per_s"] for p in passes)
        p99 = statistics.median(p["p99_us"] for p in passes) / 1e3
        print(f"| {name} | sessions opened | {rate:.0f}/s | | {p99:.1f} |")


if __name__ == "__main__":
    main()
