"""What each durability mode costs: tool calls that write state, through the redis backend behind Sentinels.

    python -m bench.durability_bench [--passes 3] [--seconds 6] [--connections 1,8]

Real processes on loopback: a redis-server primary with two replicas and three Sentinels
(tests/support/redis_sentinel.py), and one mcp-runtime per mode, pinned to CPU 0 (wrk on CPU 1), the modes
alternating within each pass:

- async: no WAIT (MCP_REDIS_WAIT_REPLICAS=0);
- replicated: WAIT for one replica, a write none holds in time answered all the same (=1, accept);
- strict: WAIT for one replica, such a write refused with 503 (=1, refuse).

The calls: handshake-era `session_increment` spread over 32 sessions, and modern-era `counter_increment` on
one handle: each a Lua script and, with WAIT, a WAIT on the same connection. Results go to
bench/results/durability.json; the table printed is the one in docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx2

from bench.harness import Server, open_session, start_runtime, wrk
from bench.redis_bench import BENCH_KEYS
from bench.runtime_bench import RESULTS
from tests.support.raw import JSON_HEADERS, MODERN_HEADERS, MODERN_META
from tests.support.redis_sentinel import SentinelGroup, sentinel_group

MODES = {
    "async": {"MCP_REDIS_WAIT_REPLICAS": "0"},
    "replicated": {"MCP_REDIS_WAIT_REPLICAS": "1", "MCP_REDIS_UNREPLICATED": "accept"},
    "strict": {"MCP_REDIS_WAIT_REPLICAS": "1", "MCP_REDIS_UNREPLICATED": "refuse"},
}


def call(name: str, arguments: dict[str, Any], meta: dict[str, Any] | None = None) -> str:
    params: dict[str, Any] = {"name": name, "arguments": arguments}
    if meta is not None:
        params["_meta"] = meta
    return json.dumps({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": params}, separators=(",", ":"))


def checked(response: httpx2.Response) -> str:
    text = response.text
    if response.status_code != 200 or '"isError":true' in text.replace(" ", ""):
        raise RuntimeError(f"benchmark request failed: {response.status_code} {text[:300]}")
    return text


def writes(server: Server, seconds: float, connections: list[int]) -> dict[str, Any]:
    with httpx2.Client(timeout=10) as client:
        sessions = [open_session(server.url, client) for _ in range(32)]
        session_headers = {**JSON_HEADERS, "mcp-protocol-version": "2025-11-25", "mcp-session-id": sessions[0]}
        checked(client.post(server.url, content=call("session_increment", {"by": 1}), headers=session_headers))
        modern = {**JSON_HEADERS, **MODERN_HEADERS, "mcp-name": "counter_create"}
        created = json.loads(
            checked(client.post(server.url, content=call("counter_create", {}, MODERN_META), headers=modern))
        )
        handle = created["result"]["structuredContent"]["result"]
    increment = call("counter_increment", {"handle": handle, "by": 1}, MODERN_META)
    eras = {
        "handshake": {
            "MCP_BODY": call("session_increment", {"by": 1}),
            "MCP_SESSIONS": ",".join(sessions),
            "MCP_HEADERS": "mcp-protocol-version:2025-11-25",
        },
        "modern": {
            "MCP_BODY": increment,
            "MCP_HEADERS": "|".join(f"{k}:{v}" for k, v in {**MODERN_HEADERS, "mcp-name": "counter_increment"}.items()),
        },
    }
    out: dict[str, Any] = {}
    for era, env in eras.items():
        for count in connections:
            wrk(server.url, "mcp_post.lua", connections=count, seconds=2, env=env)  # warm-up
            result = wrk(server.url, "mcp_post.lua", connections=count, seconds=seconds, env=env)
            result["calls_per_s"] = result["requests"] / (result["duration_us"] / 1e6)
            out[f"{era}/c{count}"] = result
    return out


def measure(group: SentinelGroup, args: argparse.Namespace) -> dict[str, list[dict[str, Any]]]:
    connections = [int(c) for c in args.connections.split(",")]
    passes: dict[str, list[dict[str, Any]]] = {mode: [] for mode in MODES}
    for index in range(args.passes):
        order = list(MODES) if index % 2 == 0 else list(reversed(MODES))
        for mode in order:
            group.primary().client().flushall()
            group.wait_replicas_in_sync(2)
            env = group.env(MCP_REQUEST_STATE_KEYS=BENCH_KEYS, **MODES[mode])
            server = start_runtime(f"durability-{mode}", env)
            try:
                time.sleep(1.0)
                passes[mode].append(writes(server, args.seconds, connections))
            finally:
                server.stop()
            line = ", ".join(
                f"{k} {v['calls_per_s']:.0f}/s p99 {v['p99_us'] / 1e3:.1f} ms" for k, v in passes[mode][-1].items()
            )
            print(f"pass {index + 1} {mode}: {line}", flush=True)
    return passes


def table(passes: dict[str, list[dict[str, Any]]]) -> str:
    rows = ["| mode | calls | calls/s | p50 ms | p99 ms |", "|---|---|---|---|---|"]
    for mode, runs in passes.items():
        for key in runs[0]:
            rate = statistics.median(run[key]["calls_per_s"] for run in runs)
            p50 = statistics.median(run[key]["p50_us"] for run in runs) / 1e3
            p99 = statistics.median(run[key]["p99_us"] for run in runs) / 1e3
            rows.append(f"| {mode} | {key} | {rate:,.0f} | {p50:.1f} | {p99:.1f} |")
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--passes", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=6)
    parser.add_argument("--connections", default="1,8")
    parser.add_argument("--out", default="durability.json")
    args = parser.parse_args()
    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    with tempfile.TemporaryDirectory() as tmp, sentinel_group(Path(tmp)) as group:
        for server in group.servers:  # as the operator configures managed Redis
            server.client().config_set("min-replicas-to-write", 1)
            server.client().config_set("min-replicas-max-lag", 2)
        passes = measure(group, args)
    results = {"started": started, "machine": platform.node(), "args": vars(args), "passes": passes}
    (RESULTS / args.out).write_text(json.dumps(results, indent=1))
    print(table(passes))


if __name__ == "__main__":
    main()
