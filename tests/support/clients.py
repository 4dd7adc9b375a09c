"""The official MCP client, in either protocol era, pointed at one replica or at several through a balancer.

The eras are "handshake" and "modern" here as everywhere; `ERA_MODE` is the one place that spells the
client's own names for them (its `mode=` argument).
"""

from __future__ import annotations

from typing import Any, Literal

import httpx2
import mcp_types as types
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from tests.support.balancer import RoundRobin
from tests.support.procs import RuntimeProcess

Era = Literal["handshake", "modern"]
ERAS: tuple[Era, ...] = ("handshake", "modern")
ERA_MODE: dict[Era, str] = {"handshake": "legacy", "modern": "2026-07-28"}


def client_mode(era: Era) -> str:
    """The official client's `mode=` for an era."""
    return ERA_MODE[era]


async def answer_elicitation(_ctx: Any, params: types.ElicitRequestParams) -> types.ElicitResult:
    question = getattr(params, "message", "")
    return types.ElicitResult(action="accept", content={"answer": f"answer to {question}"})


def mcp_client(url: str, era: Era, *, token: str | None = None, http: httpx2.AsyncClient | None = None) -> Client:
    """The official client in the given era, answering elicitations."""
    if http is None and token is not None:
        http = httpx2.AsyncClient(headers={"Authorization": f"Bearer {token}"}, timeout=30)
    server: Any = url if http is None else streamable_http_client(url, http_client=http)
    return Client(server, mode=client_mode(era), elicitation_callback=answer_elicitation)  # type: ignore[arg-type]


def balanced_client(procs: list[RuntimeProcess], era: Era = "handshake") -> tuple[Client, RoundRobin]:
    """The official client behind a balancer with no affinity (each HTTP request to the next replica),
    answering elicitations; and the balancer, to read what it saw."""
    balancer = RoundRobin([p.port for p in procs])
    http = httpx2.AsyncClient(transport=balancer, timeout=30)
    transport = streamable_http_client(procs[0].url, http_client=http)
    client = Client(transport, mode=client_mode(era), elicitation_callback=answer_elicitation)  # type: ignore[arg-type]
    return client, balancer
