"""HTTP answers that carry a JSON-RPC error body, the shape MCP clients expect on a refused request."""

from __future__ import annotations

from mcp_types import INTERNAL_ERROR, INVALID_REQUEST, ErrorData, JSONRPCError
from starlette.responses import Response

SERVICE_UNAVAILABLE = INTERNAL_ERROR


def error_response(
    status: int, message: str, *, code: int = INVALID_REQUEST, headers: dict[str, str] | None = None
) -> Response:
    body = JSONRPCError(jsonrpc="2.0", id=None, error=ErrorData(code=code, message=message))
    return Response(
        body.model_dump_json(by_alias=True, exclude_unset=True),
        status_code=status,
        media_type="application/json",
        headers=headers,
    )


def service_unavailable(message: str, retry_after: int) -> Response:
    """503 with Retry-After: the request may succeed later (cap reached, draining, backend down)."""
    return error_response(503, message, code=SERVICE_UNAVAILABLE, headers={"Retry-After": str(retry_after)})


def session_not_found() -> Response:
    return error_response(404, "Session not found")
