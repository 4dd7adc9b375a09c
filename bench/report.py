"""Markdown tables from bench/results/*.json, for docs/benchmarks.md.

python -m bench.report
"""

from __future__ import annotations

import json
import statistics
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).parent / "results"


def _median(passes: list[dict[str, Any]], key: str, field: str) -> float:
    return float(statistics.median(p[key][field] for p in passes))


def throughput_table(results: dict[str, Any], names: list[str]) -> list[str]:
    lines = [
        "| server | era | conns | calls/s | p50 ms | p99 ms | server CPU ms/call | wrk CPU ms/call |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name in names:
        passes = results["throughput"].get(name) or []
        if not passes:
            continue
        for key in passes[0]:
            era, conns = key.split("/")
            cpu = statistics.median(p[key]["server_cpu_s"] / p[key]["requests"] * 1e3 for p in passes)
            lg = statistics.median(p[key]["loadgen_cpu_s"] / p[key]["requests"] * 1e3 for p in passes)
            lines.append(
                f"| {name} | {era} | {conns[1:]} | {_median(passes, key, 'calls_per_s'):.0f} | "
                f"{_median(passes, key, 'p50_us') / 1e3:.1f} | {_median(passes, key, 'p99_us') / 1e3:.1f} | "
                f"{cpu:.2f} | {lg:.3f} |"
            )
    return lines


def ratio_table(results: dict[str, Any], pairs: list[tuple[str, str]]) -> list[str]:
    first = next(iter(results["throughput"].values()))
    keys = list(first[0]) if first else []
    lines = ["| comparison | " + " | ".join(keys) + " |", "|---|" + "---|" * len(keys)]
    for a, b in pairs:
        pa, pb = results["throughput"].get(a), results["throughput"].get(b)
        if not pa or not pb:
            continue
        cells = [f"{_median(pa, k, 'calls_per_s') / _median(pb, k, 'calls_per_s'):.2f}x" for k in keys]
        lines.append(f"| {a} / {b} | " + " | ".join(cells) + " |")
    return lines


def sessions_table(results: dict[str, Any]) -> list[str]:
    lines = ["| server | sessions opened/s | server CPU ms/session | p50 ms | p99 ms |", "|---|---|---|---|---|"]
    for name, passes in results.get("sessions", {}).items():
        if passes:
            rate = statistics.median(p["sessions_per_s"] for p in passes)
            cpu = statistics.median(p["server_cpu_s"] / max(1, p["opened"]) * 1e3 for p in passes)
            p50 = statistics.median(p["p50_us"] for p in passes) / 1e3
            p99 = statistics.median(p["p99_us"] for p in passes) / 1e3
            lines.append(f"| {name} | {rate:.0f} | {cpu:.2f} | {p50:.1f} | {p99:.1f} |")
    return lines


def main() -> None:
    runtime = json.loads((RESULTS / "runtime.json").read_text()) if (RESULTS / "runtime.json").exists() else None
    redis = json.loads((RESULTS / "redis.json").read_text()) if (RESULTS / "redis.json").exists() else None
    out: list[str] = []
    if runtime:
        out += [f"Runtime vs stock SDK: `{runtime['command']}`, {runtime['machine']}, {runtime['started']}", ""]
        out += [*throughput_table(runtime, ["plain-stock", "plain", "runtime-same", "runtime"]), ""]
        out += [*ratio_table(runtime, [("runtime-same", "plain"), ("runtime", "plain-stock")]), ""]
        out += [*sessions_table(runtime), ""]
        out += [
            "| server | GET streams held | KB per idle session | RSS before / peak / idle MB |",
            "|---|---|---|---|",
        ]
        for key, m in runtime.get("memory", {}).items():
            out.append(
                f"| {key.split('/')[0]} | {'yes' if m['get_streams'] else 'no'} | "
                f"{m['bytes_per_idle_session'] / 1024:.1f} | "
                f"{m['rss_base_mb']:.0f} / {m['rss_peak_mb']:.0f} / {m['rss_idle_mb']:.0f} |"
            )
        out.append("")
    if redis:
        out += [f"Redis backend: `{redis['command']}`, {redis['machine']}, {redis['started']}", ""]
        out += [*throughput_table(redis, ["runtime", "runtime-redis"]), ""]
        out += [*ratio_table(redis, [("runtime-redis", "runtime")]), ""]
        out += [*sessions_table(redis), ""]
        if "memory" in redis:
            m = redis["memory"]
            out.append(
                f"Idle sessions ({m['sessions']}): {m['redis_bytes_per_session']:.0f} bytes each in Redis "
                f"(INFO used_memory), {m['bytes_per_idle_session'] / 1024:.1f} KB each of replica RSS."
            )
        if "replica_marginal" in redis:
            r = redis["replica_marginal"]
            out.append(
                f"Replica RSS after {r['first']} idle sessions: {r['rss_after_first_mb']:.0f} MB; after "
                f"{r['more']} more: {r['rss_after_more_mb']:.0f} MB; marginal cost "
                f"{r['marginal_bytes_per_session']:.0f} bytes per idle session."
            )
        if "failover" in redis:
            f = redis["failover"]
            out.append(
                f"Failover ({f['seconds']:.0f} s, 3 replicas, one killed with SIGKILL and restarted): "
                f"{f['calls']} calls, {f['failed']} failed {f.get('failures_by_kind', {})}, {f['not_found']} "
                f"'Session not found', {f['lost_sessions']} lost sessions, "
                f"{f['sessions_with_applied_failed_call']} sessions where a failed call had been applied."
            )
    print("\n".join(out))


if __name__ == "__main__":
    main()
