"""`mcp-runtime`: serve an MCP app over Streamable HTTP, or print the settings it reads."""

from __future__ import annotations

import argparse
import asyncio
import gc
import importlib.util
import logging
import os
import signal
import sys
from types import FrameType

import uvicorn

from mcp_runtime import logs
from mcp_runtime.compose import build_runtime
from mcp_runtime.router import RuntimeApp
from mcp_runtime.sdk.loading import AppLoadError, load_app
from mcp_runtime.settings import RuntimeSettings, SettingsError, load_settings
from mcp_runtime.web.limits import bounded_protocols

logger = logging.getLogger("mcp_runtime")


class DrainingServer(uvicorn.Server):
    """uvicorn, with SIGTERM meaning: stop being ready, finish what is in flight, then exit."""

    def __init__(self, config: uvicorn.Config, app: RuntimeApp) -> None:
        super().__init__(config)
        self.runtime = app
        self._drain_task: asyncio.Task[None] | None = None

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if self._drain_task is not None or (sig == signal.SIGINT and self.should_exit):
            super().handle_exit(sig, frame)  # a second signal: exit now
            return
        loop = asyncio.get_event_loop()
        self._drain_task = loop.create_task(self._drain(sig))

    async def _drain(self, sig: int) -> None:
        grace = self.runtime.settings.shutdown_grace_seconds
        self.runtime.lifecycle.start_draining()
        self.runtime.metrics.draining.set(1)
        streams = self.runtime.manager.drain_streams()
        held = await self.runtime.manager.keep_held_answers()
        logger.info(
            "signal %d: draining (%d requests in flight, %d streams sent elsewhere, %d held answers kept, grace %.0fs)",
            sig,
            self.runtime.lifecycle.in_flight,
            streams,
            held,
            grace,
        )
        drained = await self.runtime.lifecycle.wait_drained(grace)
        if not drained:
            logger.warning("grace period over with %d requests in flight", self.runtime.lifecycle.in_flight)
        logger.info("drained; exiting")
        self.should_exit = True


def serve(app_spec: str, host: str, port: int, settings: RuntimeSettings, path: str = "/mcp") -> int:
    log_config = logs.configure(settings.log_format, settings.log_level, settings.replica_name)
    if settings.gc_threshold:
        gc.set_threshold(settings.gc_threshold, 20, 20)
    if "" not in sys.path and os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())  # as uvicorn does: a module in the current directory can be the app
    try:
        loaded = load_app(app_spec)
    except AppLoadError as error:
        print(f"mcp-runtime: {error}", file=sys.stderr)
        return 2
    runtime = build_runtime(loaded, settings, path=path)
    protocols = bounded_protocols(
        settings.max_request_header_bytes,
        settings.request_header_timeout_seconds,
        settings.request_body_timeout_seconds,
    )
    parser = settings.http_parser
    if parser == "auto":
        parser = "httptools" if importlib.util.find_spec("httptools") is not None else "h11"
    config = uvicorn.Config(
        runtime,
        host=host,
        port=port,
        log_config=log_config,
        access_log=settings.access_log,
        loop=settings.event_loop,
        http=protocols[parser],
        timeout_graceful_shutdown=1,
        lifespan="on",
    )
    server = DrainingServer(config, runtime)
    logger.info(
        "serving %s (%s) on http://%s:%d%s (backend %s, replica %s)",
        app_spec,
        loaded.kind,
        host,
        port,
        path,
        settings.session_backend,
        settings.replica_name,
    )
    server.run()
    return 0


def print_settings() -> None:
    rows = []
    for name, info in RuntimeSettings.model_fields.items():
        default = info.get_default(call_default_factory=False)
        if info.default_factory is not None:
            default = "(computed)" if name == "replica_name" else ",".join(info.default_factory())  # type: ignore[call-arg]
        rows.append((RuntimeSettings.env_name(name), "" if default is None else str(default), info.description or ""))
    width = max(len(r[0]) for r in rows)
    for env, default, description in rows:
        print(f"{env:<{width}}  default: {default or '(unset)'}\n{'':<{width}}  {description}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="mcp-runtime", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    serve_cmd = commands.add_parser("serve", help="serve an MCP app at /mcp")
    serve_cmd.add_argument("--app", required=True, help="the MCPServer to serve, as MODULE:ATTR")
    serve_cmd.add_argument("--host", default="0.0.0.0")
    serve_cmd.add_argument("--port", type=int, default=8000)
    serve_cmd.add_argument("--path", default="/mcp", help="the MCP endpoint's path")
    commands.add_parser("settings", help="print every MCP_* setting with its default and meaning")
    args = parser.parse_args(argv)

    if args.command == "settings":
        print_settings()
        return 0
    try:
        settings = load_settings()
    except SettingsError as error:
        print(f"mcp-runtime: {error}", file=sys.stderr)
        return 2
    if not args.path.startswith("/"):
        print("mcp-runtime: --path must start with /", file=sys.stderr)
        return 2
    return serve(args.app, args.host, args.port, settings, args.path.rstrip("/") or "/")


if __name__ == "__main__":
    sys.exit(main())
