"""Prometheus metrics of one runtime process, all named `mcp_runtime_*`."""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

__all__ = ["CONTENT_TYPE_LATEST", "RuntimeMetrics"]

_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


class RuntimeMetrics:
    """The metrics, in a registry of their own (so several runtimes can live in one test process)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.sessions_active = Gauge(
            "mcp_runtime_sessions_active", "Handshake-era sessions open (not expired, not deleted).", registry=r
        )
        self.sessions_created = Counter(
            "mcp_runtime_sessions_created_total", "Handshake-era sessions opened.", registry=r
        )
        self.sessions_expired = Counter(
            "mcp_runtime_sessions_expired_total", "Sessions removed after MCP_SESSION_TTL_SECONDS idle.", registry=r
        )
        self.sessions_deleted = Counter(
            "mcp_runtime_sessions_deleted_total", "Sessions ended by the client (DELETE).", registry=r
        )
        self.sessions_rejected = Counter(
            "mcp_runtime_sessions_rejected_total",
            "New sessions refused, by reason (server_limit, client_limit, draining, backend_unavailable).",
            ["reason"],
            registry=r,
        )
        self.sessions_restored = Counter(
            "mcp_runtime_sessions_restored_total",
            "Live transports rebuilt from a session record (after idle release, or on another replica).",
            registry=r,
        )
        self.transports_live = Gauge(
            "mcp_runtime_transports_live",
            "Sessions live in this process (their connection and event store).",
            registry=r,
        )
        self.requests = Counter(
            "mcp_runtime_requests_total", "HTTP requests to the MCP endpoint.", ["era", "method", "status"], registry=r
        )
        self.request_duration = Histogram(
            "mcp_runtime_request_duration_seconds",
            "Time to answer an HTTP request to the MCP endpoint (GET streams: until they close).",
            ["era", "method"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.answers_forwarded = Counter(
            "mcp_runtime_answers_forwarded_total",
            "Client answers to server-to-client requests passed to the replica that asked.",
            registry=r,
        )
        self.writes_unreplicated = Counter(
            "mcp_runtime_redis_writes_unreplicated_total",
            "Session openings and handle creations that fewer than MCP_REDIS_WAIT_REPLICAS Redis replicas "
            "acknowledged within MCP_REDIS_WAIT_TIMEOUT_SECONDS (a failover right after could lose them).",
            registry=r,
        )
        self.streams_detached = Counter(
            "mcp_runtime_streams_detached_total",
            "POST streams cut (client gone, idle close, drain) while their call ran on; its answer is kept for a GET "
            "with Last-Event-ID.",
            registry=r,
        )
        self.held_answers_kept = Counter(
            "mcp_runtime_held_answers_kept_total",
            "Answers delivered on their open POST stream and held in memory, written to the event log because a "
            "client resumed the stream or the replica drained.",
            registry=r,
        )
        self.streams_resumed = Counter(
            "mcp_runtime_streams_resumed_total",
            "GETs with Last-Event-ID, by outcome: post (a POST stream resumed), get (the GET stream), restarted (the "
            "id was past the kept events), runner_lost (a resumed call's replica went away).",
            ["outcome"],
            registry=r,
        )
        self.in_flight = Gauge("mcp_runtime_requests_in_flight", "POST requests being served.", registry=r)
        self.draining = Gauge("mcp_runtime_draining", "1 while the process drains before exit.", registry=r)

        self._request_children: dict[tuple[str, str, int], tuple[Any, Any]] = {}

    def observe_request(self, era: str, method: str, status: int, seconds: float) -> None:
        key = (era, method, status)
        children = self._request_children.get(key)
        if children is None:
            children = (self.requests.labels(era, method, str(status)), self.request_duration.labels(era, method))
            self._request_children[key] = children
        children[0].inc()
        children[1].observe(seconds)

    def rejected(self, reason: str) -> None:
        self.sessions_rejected.labels(reason).inc()

    def render(self) -> bytes:
        return generate_latest(self.registry)
