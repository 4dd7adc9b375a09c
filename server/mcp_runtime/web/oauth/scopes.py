"""Which scopes a tool needs (MCP_OAUTH_TOOL_SCOPES): a call without them is refused with 403
`insufficient_scope` naming them (the MCP authorization spec's step-up), and a listing shows only the tools
the caller may call."""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping


class ToolScopes:
    def __init__(self, needed: Mapping[str, Collection[str]]) -> None:
        self.needed = {tool: frozenset(scopes) for tool, scopes in needed.items() if scopes}

    def __bool__(self) -> bool:
        return bool(self.needed)

    def missing(self, tool: str, granted: Collection[str]) -> frozenset[str]:
        """The scopes a call of `tool` needs that `granted` lacks."""
        return self.needed.get(tool, frozenset()) - frozenset(granted)

    def may_call(self, tool: str, granted: Collection[str]) -> bool:
        return not self.missing(tool, granted)

    def called_tool(self, body: bytes) -> str | None:
        """The tool a request body calls (a `tools/call` request), else None (a malformed body is the JSON-RPC
        layer's to refuse)."""
        if b"tools/call" not in body:
            return None
        try:
            message = json.loads(body)
        except ValueError:
            return None
        if not isinstance(message, dict) or message.get("method") != "tools/call":
            return None
        params = message.get("params")
        name = params.get("name") if isinstance(params, dict) else None
        return name if isinstance(name, str) else None
