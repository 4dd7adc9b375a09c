"""A FastMCP 4.x app: session state with ctx.get_state/set_state, and an elicitation."""

from __future__ import annotations

import os

from fastmcp import Context, FastMCP

mcp = FastMCP("fastmcp-form")


@mcp.tool
async def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


@mcp.tool
async def whoami() -> str:
    """The replica serving this call."""
    return os.environ.get("MCP_REPLICA_NAME", "?")


@mcp.tool
async def bump(ctx: Context) -> int:
    """Add one to a counter in this session's FastMCP state and return it."""
    count = int(await ctx.get_state("count") or 0) + 1
    await ctx.set_state("count", count)
    return count


@mcp.tool
async def ask(question: str, ctx: Context) -> str:
    """Ask the client (elicitation) and return its answer."""
    result = await ctx.elicit(question, response_type=str)
    return str(getattr(result, "data", result.action))


class Holder:
    """An object holding a low-level Server where FastMCP keeps it (and the FastMCP app as an attribute)."""

    app = mcp


def make_app() -> FastMCP:
    """A factory returning the FastMCP app."""
    return mcp
