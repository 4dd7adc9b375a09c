"""OpenTelemetry spans around each request: kept when something collects them.

Every SDK `Server` starts with an OpenTelemetry middleware that opens a span around each request. With no tracer
provider configured, the spans go nowhere, yet they cost about a tenth of a fast call (a no-op span, its context
manager, its attributes). The runtime keeps the middleware when tracing is on (`MCP_TRACING=on`), or with `auto`
(the default) when a tracer provider is installed or the OpenTelemetry environment names an exporter.
"""

from __future__ import annotations

import os
from typing import Any, Literal

from mcp.server.lowlevel.server import Server
from opentelemetry import trace

from mcp_runtime.sdk.surface import is_tracing_middleware

EXPORTER_VARIABLES = ("OTEL_TRACES_EXPORTER", "OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")


def tracing_configured(environ: dict[str, str] | None = None) -> bool:
    """Whether spans would go anywhere: a real tracer provider, or an exporter named in the environment."""
    env = os.environ if environ is None else environ
    if any(env.get(name) and env.get(name) != "none" for name in EXPORTER_VARIABLES):
        return True
    provider = trace.get_tracer_provider()
    return not isinstance(provider, trace.ProxyTracerProvider | trace.NoOpTracerProvider)


def keep_tracing(server: Server[Any], mode: Literal["auto", "on", "off"]) -> bool:
    """Drop the tracing middleware unless `mode` (and, for auto, the process) wants spans; whether it stays."""
    if mode == "on" or (mode == "auto" and tracing_configured()):
        return True
    server.middleware[:] = [m for m in server.middleware if not is_tracing_middleware(m)]
    return False
