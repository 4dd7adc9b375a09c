"""An app whose tool catalogue fails: what the operator's `Verified` condition reports for a server that
starts and is ready, yet cannot list its tools (a backing service it reads its tools from is down, say).

mcp-runtime serve --app mcp_runtime.examples.faulty:server
"""

from __future__ import annotations

from typing import Any

import mcp_types as types
from mcp.server.lowlevel.server import Server


async def list_tools(_ctx: Any, _params: types.PaginatedRequestParams | None) -> types.ListToolsResult:
    raise RuntimeError("the tool catalogue is unavailable")


server: Server[Any] = Server("mcp-fleet-faulty", version="0.1.0", on_list_tools=list_tools)
