"""Measure what losing the Redis primary costs the clients, in one durability mode, without asserting.

    eval "$(CLUSTER=local e2e/target.sh env)"
    python -m e2e.failover_report --durability async|replicated|strict [--ways graceful,force,sigkill]

What e2e/test_failover_durability.py does (examples/redis-managed.yaml under checked load through its
Service, the primary lost gracefully, forcibly, then by SIGKILL through the node's containerd), with
`spec.redis.highAvailability.durability` set to the mode asked for (left out: the operator's default). Prints,
per way, the calls acknowledged, the 503s, the longest time without an answer, the rollbacks and the largest
one, split-brain flips, sessions and handles lost; writes the whole report (JSON) and the Redis, Sentinel and
server logs to a directory it prints.

The operator: an mcp-fleet release already installed is used as it is (`make demo`'s); otherwise the chart is
installed (release failover-report) and uninstalled at the end. The namespace (failover-<mode>-<random>) is
deleted at the end unless --keep.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
import uuid
from pathlib import Path

from e2e.failover import WAYS, Failover, manifest, run_all, table, update_crds
from e2e.fleet import helm_install, wait_ready
from e2e.kube import Cluster

RELEASE = "failover-report"
RELEASE_NAMESPACE = "mcp-fleet-failover-report"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m e2e.failover_report", description=__doc__.split("\n\n")[0])
    parser.add_argument("--durability", choices=["async", "replicated", "strict"], help="left out: the default")
    parser.add_argument("--ways", default=",".join(WAYS), help=f"comma-separated, in order (default {','.join(WAYS)})")
    parser.add_argument("--settle", type=float, default=20, help="seconds of load after the set is whole again")
    parser.add_argument("--sessions", type=int, default=12)
    parser.add_argument("--handles", type=int, default=3)
    parser.add_argument("--pause", type=float, default=0.02, help="seconds between two calls of one client")
    parser.add_argument("--out", type=Path, help="the directory for the report and logs (default: a new tmp dir)")
    parser.add_argument("--keep", action="store_true", help="keep the namespace (and an operator installed here)")
    args = parser.parse_args(argv)
    ways = tuple(w for w in args.ways.split(",") if w)
    unknown = [w for w in ways if w not in WAYS]
    if unknown:
        parser.error(f"unknown ways {unknown}: choose among {list(WAYS)}")
    mode = args.durability or "default"
    out = args.out or Path(tempfile.mkdtemp(prefix=f"failover-{mode}-"))
    out.mkdir(parents=True, exist_ok=True)

    kube = Cluster()
    update_crds(kube)
    releases = [r for r in json.loads(kube.helm("list", "-A", "-o", "json")) if r["chart"].startswith("mcp-fleet-")]
    installed_here = not releases
    if installed_here:
        print(f"[report] installing the operator (release {RELEASE} in {RELEASE_NAMESPACE})", flush=True)
        helm_install(kube, RELEASE, RELEASE_NAMESPACE, {}, out)
    else:
        print(f"[report] using the operator of release {releases[0]['name']} in {releases[0]['namespace']}")
    namespace = f"failover-{mode}-{uuid.uuid4().hex[:6]}"
    kube.run("create", "namespace", namespace)
    body = manifest(durability=args.durability)
    try:
        kube.apply(json.dumps(body), namespace)
        wait_ready(kube, namespace, body["metadata"]["name"], 420)
        failover = Failover(kube, namespace, out, settle=args.settle)
        started = time.monotonic()

        def log(line: str) -> None:
            print(line, flush=True)
            with (out / "steps.log").open("a") as f:
                f.write(line + "\n")

        report = run_all(failover, ways, log, (args.sessions, args.handles, args.pause))
        report["durability_asked"] = mode
        report["namespace"] = namespace
        (out / "report.json").write_text(json.dumps(report, indent=2))
        took = round(time.monotonic() - started)
        print(f"\n[report] durability {report['durability']} (asked: {mode}), {took} s; figures per way:")
        print(table(report))
        print(f"[report] everything in {out}")
        return 0
    finally:
        if not args.keep:
            kube.run("delete", "namespace", namespace, "--wait=true", "--timeout=180s", check=False, timeout=240)
            if installed_here:
                kube.helm("uninstall", RELEASE, "-n", RELEASE_NAMESPACE, "--wait", check=False)
                kube.run(
                    "delete", "namespace", RELEASE_NAMESPACE, "--wait=true", "--timeout=120s", check=False, timeout=150
                )


if __name__ == "__main__":
    sys.exit(main())
