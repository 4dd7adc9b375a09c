"""A plain low-level `mcp.server.lowlevel.Server` app (no MCPServer): tools by hand, handles for state."""

from __future__ import annotations

import json
import os
from typing import Any

import mcp_types as types
from mcp.server.lowlevel.server import Server

from mcp_runtime.state import handle_store

TOOLS = [
    types.Tool(
        name="add",
        description="Add two integers.",
        input_schema={"type": "object", "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}}},
    ),
    types.Tool(name="whoami", description="The replica serving this call.", input_schema={"type": "object"}),
    types.Tool(name="counter_create", description="A new counter handle.", input_schema={"type": "object"}),
    types.Tool(
        name="counter_increment",
        description="Add one to the counter behind a handle.",
        input_schema={"type": "object", "properties": {"handle": {"type": "string"}}},
    ),
]


async def list_tools(_ctx: Any, _params: types.PaginatedRequestParams | None) -> types.ListToolsResult:
    return types.ListToolsResult(tools=TOOLS)


async def call_tool(_ctx: Any, params: types.CallToolRequestParams) -> types.CallToolResult:
    args = params.arguments or {}
    if params.name == "add":
        value: Any = int(args["a"]) + int(args["b"])
    elif params.name == "whoami":
        value = os.environ.get("MCP_REPLICA_NAME", "?")
    elif params.name == "counter_create":
        value = await handle_store().create({"count": 0})
    elif params.name == "counter_increment":
        value = await handle_store().increment(str(args["handle"]), "count", 1)
    else:
        return types.CallToolResult(content=[types.TextContent(type="text", text="unknown tool")], is_error=True)
    return types.CallToolResult(
        content=[types.TextContent(type="text", text=json.dumps(value))], structured_content={"result": value}
    )


server: Server[Any] = Server("lowlevel-form", on_list_tools=list_tools, on_call_tool=call_tool)


def make_server() -> Server[Any]:
    """A factory (zero arguments) returning a low-level Server."""
    return Server("lowlevel-factory", on_list_tools=list_tools, on_call_tool=call_tool)
