"""The demo MCP app, used by the tests, the end-to-end suite and the benchmarks.

mcp-runtime serve --app mcp_runtime.examples.demo:app
"""

from __future__ import annotations

import os
import socket
from typing import Annotated, Any

import anyio
from mcp.server.caching import CacheHint
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.resolve import Elicit, Resolve
from mcp_types.methods import CacheableMethod
from pydantic import BaseModel, Field

from mcp_runtime.state import app_state, caller, handle_store, session_state

# Lists change only with a deployment: any client may cache them for a minute. A resource's content is
# per-read (demo://note changes under the client), so reads are fresh and private.
CACHE_HINTS: dict[CacheableMethod, CacheHint] = {
    "tools/list": CacheHint(ttl_ms=60_000, scope="public"),
    "prompts/list": CacheHint(ttl_ms=60_000, scope="public"),
    "resources/list": CacheHint(ttl_ms=60_000, scope="public"),
    "resources/templates/list": CacheHint(ttl_ms=60_000, scope="public"),
    "resources/read": CacheHint(ttl_ms=0, scope="private"),
}

app = MCPServer(
    "mcp-fleet-demo",
    instructions="A demo of mcp-fleet: state that survives any replica.",
    cache_hints=CACHE_HINTS,
)


def _replica() -> str:
    return os.environ.get("MCP_REPLICA_NAME") or socket.gethostname()


@app.tool()
async def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


@app.tool()
async def whoami(ctx: Context) -> dict[str, Any]:
    """Which replica served this call, its process id, and the protocol version of the request."""
    return {"replica": _replica(), "pid": os.getpid(), "protocol_version": ctx.protocol_version}


@app.tool()
async def caller_info(ctx: Context) -> dict[str, Any]:
    """Who is calling: with OAuth the token's issuer, subject and scopes (a tool can act for its caller)."""
    who = caller(ctx)
    if who is None:
        return {"authenticated": False}
    return {"authenticated": True, "issuer": who.issuer, "subject": who.subject, "scopes": sorted(who.scopes)}


@app.tool()
async def session_increment(ctx: Context, by: int = 1) -> int:
    """Add `by` to a counter kept in this handshake-era session's state and return it."""
    return await session_state(ctx).increment("counter", by)


@app.tool()
async def counter_create() -> str:
    """Mint a handle to a new counter at 0 (state for modern-era clients, passed back as an argument)."""
    return await handle_store().create({"count": 0})


@app.tool()
async def counter_increment(handle: str, by: int = 1) -> int:
    """Add `by` to the counter behind `handle` and return it."""
    return await handle_store().increment(handle, "count", by)


@app.tool()
async def slow(ctx: Context, seconds: float) -> str:
    """Wait `seconds`, reporting progress about ten times a second."""
    seconds = max(0.0, min(seconds, 300.0))
    steps = max(1, int(seconds * 10))
    for step in range(1, steps + 1):
        await anyio.sleep(seconds / steps)
        await ctx.report_progress(step, steps, f"waited {step * seconds / steps:.1f}s of {seconds:.1f}s")
    return f"waited {seconds:g}s"


class Answer(BaseModel):
    answer: str = Field(description="Your answer")


def _ask_client(question: str) -> Elicit[Answer]:
    return Elicit(question, Answer)


@app.tool()
async def ask(question: str, reply: Annotated[Answer, Resolve(_ask_client)]) -> str:
    """Ask the client `question` (elicitation) and return its answer."""
    return reply.answer


@app.tool()
async def note_set(ctx: Context, text: str) -> str:
    """Change the resource demo://note; subscribers hear `notifications/resources/updated`."""
    await app_state().set("note", text)
    if ctx.protocol_version and ctx.protocol_version >= "2026-07-28":
        await ctx.notify_resource_updated("demo://note")  # subscriptions/listen streams
    else:
        await ctx.session.send_resource_updated("demo://note")  # this session's GET stream
    return text


@app.resource("demo://note", mime_type="text/plain")
async def note() -> str:
    """The text last given to note_set (shared by every replica)."""
    text: str = await app_state().get("note", "")
    return text


@app.resource("demo://replica", mime_type="application/json")
def replica_resource() -> dict[str, Any]:
    """The replica that served this read."""
    return {"replica": _replica(), "pid": os.getpid()}


@app.prompt()
def greet(name: str) -> str:
    """A greeting for `name`."""
    return f"Say hello to {name}, from the mcp-fleet demo."
