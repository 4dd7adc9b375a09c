"""`tools/list` shows a caller only the tools their token's scopes let them call (MCP_OAUTH_TOOL_SCOPES), in
both protocol eras: a middleware on the app's low-level server (the SDK's public `Server.middleware`), which
reads the caller from the request the transport hands it. (A call of a tool the caller may not call never
gets this far: the router answers it 403 `insufficient_scope`, `web/guard.py`.)"""

from __future__ import annotations

from typing import Any

from mcp.server.context import CallNext, ServerRequestContext
from mcp.server.lowlevel.server import Server
from mcp_types import ListToolsResult

from mcp_runtime.web.guard import PRINCIPAL_KEY, Principal
from mcp_runtime.web.oauth.scopes import ToolScopes


class ToolsByScope:
    """The middleware: filters each `tools/list` result to the tools the request's caller may call."""

    def __init__(self, scopes: ToolScopes) -> None:
        self.scopes = scopes

    async def __call__(self, ctx: ServerRequestContext[Any, Any], call_next: CallNext) -> Any:
        result = await call_next(ctx)
        if ctx.method != "tools/list":
            return result
        principal = _principal(ctx)
        if principal is None or principal.issuer is None:  # not an OAuth caller (a static token): every tool
            return result
        granted = principal.scopes
        if isinstance(result, ListToolsResult):
            tools = [tool for tool in result.tools if self.scopes.may_call(tool.name, granted)]
            return result.model_copy(update={"tools": tools})
        if isinstance(result, dict) and isinstance(result.get("tools"), list):  # (the result, already dumped)
            listed = [
                t
                for t in result["tools"]
                if not isinstance(t, dict) or self.scopes.may_call(t.get("name", ""), granted)
            ]
            return {**result, "tools": listed}
        return result


def _principal(ctx: ServerRequestContext[Any, Any]) -> Principal | None:
    scope = getattr(ctx.request, "scope", None)
    found = scope.get(PRINCIPAL_KEY) if isinstance(scope, dict) else None
    return found if isinstance(found, Principal) else None


def show_tools_by_scope(server: Server[Any], scopes: ToolScopes) -> None:
    """Install the filter on the app's server (outermost, so it sees what every other middleware answered)."""
    if scopes:
        server.middleware.insert(0, ToolsByScope(scopes))
