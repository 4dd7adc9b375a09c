"""`mcp-operator`: run the McpServer operator (kopf), or print its CRD."""

from __future__ import annotations

import argparse
import logging
import secrets
import socket
import sys
from typing import Any, cast

from pydantic import ValidationError

from mcp_operator.config import OperatorSettings
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
    run.add_argument("--metrics-port", type=int, default=9090, help="serve Prometheus /metrics here (0: off)")
    run.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    run.add_argument("--log-format", default="text", choices=["text", "json"], help="json: one object a line")
    commands.add_parser("crd", help="print the McpServer CustomResourceDefinition")
    args = parser.parse_args(argv)

    if args.command == "crd":
        print(render_crd(), end="")
        return 0

    try:
        settings = OperatorSettings()
    except ValidationError as error:
        for problem in error.errors():
            name = "MCP_FLEET_" + "_".join(str(p) for p in problem["loc"]).upper()
            print(f"mcp-operator: {name}: {problem['msg']}", file=sys.stderr)
        return 2

    import kopf

    import mcp_operator.controller.registration  # noqa: F401 - registers the handlers

    log_format = kopf.LogFormat.JSON if args.log_format == "json" else kopf.LogFormat.FULL
    kopf.configure(debug=args.log_level == "DEBUG", log_format=log_format)
    logging.getLogger().setLevel(args.log_level)
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)  # a line per liveness probe otherwise
    if args.metrics_port:
        from mcp_operator.metrics import serve

        serve(args.metrics_port)
    logging.getLogger(__name__).info(
        "default images: runtime %s, redis %s", settings.default_runtime_image, settings.default_redis_image
    )
    kopf.run(
        clusterwide=not args.namespace,
        namespaces=args.namespace,
        standalone=args.standalone,
        peering_name=None if args.standalone else args.peering,
        priority=args.priority if args.priority is not None else secrets.randbelow(1_000_000) + 1,
        liveness_endpoint=args.liveness,
        # kopf would name this replica after the user, and a uid with no passwd entry (any uid the cluster
        # picks) has no user name; the pod's host name and a random suffix are unique and need none.
        identity=cast(Any, f"{socket.gethostname()}-{secrets.token_hex(4)}"),  # kopf's Identity is a NewType
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
