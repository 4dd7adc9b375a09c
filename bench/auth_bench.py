"""What authorization costs: `tools/call add` at 1, 8 and 32 connections, both eras, on one runtime (memory
backend) with static bearer tokens (MCP_AUTH_TOKEN_FILE) against one with OAuth JWT access tokens (a real
OpenID provider, panva's oidc-provider, started here; its JWKS cached after the first request), alternating
in each pass; a runtime without authentication for reference.

    python -m bench.auth_bench [--passes 3] [--seconds 5]

Results go to bench/results/auth.json.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import tempfile
from pathlib import Path
from typing import Any

from bench.harness import start_runtime
from bench.runtime_bench import MANY, RESULTS, throughput
from tests.support.oidc import running_provider

STATIC_TOKEN = "bench-static-token-0123456789abcdef0123456789abcdef"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--passes", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--out", default="auth.json")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="auth-bench-"))
    tokens_file = work / "tokens"
    tokens_file.write_text(STATIC_TOKEN + "\n")
    resource = "http://bench.test/mcp"
    passes: list[dict[str, Any]] = []
    with running_provider(work / "provider", [resource], access_ttl=3600) as provider:
        oauth_env = {
            **MANY,
            "MCP_OAUTH_ISSUER": provider.issuer,
            "MCP_OAUTH_RESOURCE": resource,
            "MCP_OAUTH_REQUIRED_SCOPES": "tools:read",
        }
        static_env = {**MANY, "MCP_AUTH_TOKEN_FILE": str(tokens_file)}
        servers: dict[str, tuple[dict[str, str], str | None]] = {
            "none": (MANY, None),
            "static": (static_env, STATIC_TOKEN),
            "oauth": (oauth_env, provider.token()),
        }
        for number in range(args.passes):
            found: dict[str, Any] = {}
            for name, (env, token) in servers.items():
                server = start_runtime(f"auth-{name}", env)
                auth = {"Authorization": f"Bearer {token}"} if token else None
                try:
                    found[name] = throughput(server, args.seconds, auth)
                finally:
                    server.stop()
                print(
                    f"pass {number + 1} {name}:",
                    {k: round(v["calls_per_s"]) for k, v in found[name].items()},
                    flush=True,
                )
            passes.append(found)
    cells = list(passes[0]["none"])
    medians = {
        name: {cell: statistics.median(p[name][cell]["calls_per_s"] for p in passes) for cell in cells}
        for name in ("none", "static", "oauth")
    }
    cpu = {
        name: {
            cell: statistics.median(1000 * p[name][cell]["server_cpu_s"] / p[name][cell]["requests"] for p in passes)
            for cell in cells
        }
        for name in ("none", "static", "oauth")
    }
    results = {
        "machine": f"{platform.node()} {platform.processor() or platform.machine()}",
        "command": f"python -m bench.auth_bench --passes {args.passes} --seconds {args.seconds:g}",
        "calls_per_s_median": medians,
        "server_cpu_ms_per_call_median": cpu,
        "passes": passes,
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / args.out).write_text(json.dumps(results, indent=1))
    for cell in cells:
        static, oauth = medians["static"][cell], medians["oauth"][cell]
        print(
            f"{cell}: none {medians['none'][cell]:.0f}, static {static:.0f}, oauth {oauth:.0f} calls/s "
            f"({100 * (oauth - static) / static:+.1f}%); CPU ms/call static {cpu['static'][cell]:.3f}, "
            f"oauth {cpu['oauth'][cell]:.3f}"
        )


if __name__ == "__main__":
    main()
