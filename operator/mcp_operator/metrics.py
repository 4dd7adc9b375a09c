"""Prometheus metrics of the operator, all named `mcp_fleet_operator_*` (served by `--metrics-port`)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

REGISTRY = CollectorRegistry()

RECONCILES = Counter(
    "mcp_fleet_operator_reconciles_total",
    "Reconciles of McpServers, by result (ok, invalid_spec, error).",
    ["result"],
    registry=REGISTRY,
)
RECONCILE_SECONDS = Histogram(
    "mcp_fleet_operator_reconcile_duration_seconds",
    "Time one reconcile takes (read, apply children, write status).",
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
    registry=REGISTRY,
)
READY = Gauge(
    "mcp_fleet_operator_mcpserver_ready",
    "1 when the McpServer's Ready condition is True, else 0.",
    ["namespace", "name"],
    registry=REGISTRY,
)


@contextmanager
def timed_reconcile() -> Iterator[dict[str, str]]:
    """Counts and times one reconcile; the body may set outcome["result"] (ok unless it raises)."""
    outcome = {"result": "ok"}
    started = time.perf_counter()
    try:
        yield outcome
    except Exception:
        outcome["result"] = "error"
        raise
    finally:
        RECONCILE_SECONDS.observe(time.perf_counter() - started)
        RECONCILES.labels(outcome["result"]).inc()


def record_ready(namespace: str, name: str, conditions: list[dict[str, object]]) -> None:
    ready = any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)
    READY.labels(namespace, name).set(1 if ready else 0)


def forget(namespace: str, name: str) -> None:
    with suppress(KeyError):
        READY.remove(namespace, name)


def serve(port: int, host: str = "0.0.0.0") -> None:
    start_http_server(port, addr=host, registry=REGISTRY)
