"""`mcp-operator`: run the McpServer operator (kopf), or print its CRD."""

from __future__ import annotations

import argparse
import logging
import secrets
import sys

from mcp_operator.crd import render_crd


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="mcp-operator", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="reconcile McpServers")
    scope = run.add_mutually_exclusive_group()
    scope.add_argument("--namespace", action="append", default=[], help="watch this namespace (repeatable)")
    scope.add_argument("--all-namespaces", action="store_true", help="watch every namespace (the default)")
    run.add_argument("--standalone", action="store_true", help="no peering with other operator replicas")
    run.add_argument("--peering", default="mcp-fleet", help="the peering object shared by operator replicas")
    run.add_argument(
        "--priority",
        type=int,
        default=None,
        help="peering priority; the highest live replica works (default: random, so replicas never tie)",
    )
    run.add_argument("--liveness", default="http://0.0.0.0:8080/healthz", help="where /healthz is served")
    run.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    commands.add_parser("crd", help="print the McpServer CustomResourceDefinition")
    args = parser.parse_args(argv)

    if args.command == "crd":
        print(render_crd(), end="")
        return 0

    import kopf

    import mcp_operator.handlers  # noqa: F401 - registers the handlers

    logging.basicConfig(level=args.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    kopf.run(
        clusterwide=not args.namespace,
        namespaces=args.namespace,
        standalone=args.standalone,
        peering_name=None if args.standalone else args.peering,
        priority=args.priority if args.priority is not None else secrets.randbelow(1_000_000) + 1,
        liveness_endpoint=args.liveness,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
