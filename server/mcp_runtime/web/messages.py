"""A handshake-era POST body, parsed once, and what the router needs to know of it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pydantic
import pydantic_core
from mcp_types import INVALID_REQUEST, PARSE_ERROR, JSONRPCError, JSONRPCMessage, JSONRPCResponse
from mcp_types import jsonrpc_message_adapter as _adapter


class BadMessage(Exception):
    """The body is not one valid JSON-RPC 2.0 message: the answer is 400 with this JSON-RPC error."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True, slots=True)
class Incoming:
    """A request or notification is known by its shape (the SDK transport validates it whole, once); an answer
    to a server-to-client request is validated here, since it may be relayed to another replica."""

    method: str | None  # a request's or notification's method; None for an answer
    id: int | str | None  # a request's or answer's id
    answer: JSONRPCMessage | None = None  # the validated answer (result or error)
    params: dict[str, Any] | None = None  # a request's or notification's params

    @property
    def is_request(self) -> bool:
        return self.method is not None and self.id is not None

    @property
    def is_answer(self) -> bool:
        return self.answer is not None

    @property
    def request_key(self) -> str | None:
        """A request's id as the SDK transport keys it (`str(id)`, so 1 and "1" are the same request)."""
        return str(self.id) if self.is_request else None


def _valid_id(value: object) -> bool:
    return isinstance(value, int | str) and not isinstance(value, bool)


def parse(body: bytes) -> Incoming:
    """Parse a POST body; raises BadMessage for anything that is not one JSON-RPC 2.0 message."""
    try:
        raw = pydantic_core.from_json(body)
    except ValueError as error:
        raise BadMessage(PARSE_ERROR, f"Parse error: {error}") from None
    if isinstance(raw, dict) and raw.get("jsonrpc") == "2.0" and isinstance(raw.get("method"), str):
        request_id = raw.get("id")
        params = raw.get("params")
        if params is None or isinstance(params, dict):
            if _valid_id(request_id):
                return Incoming(raw["method"], request_id, params=params)
            if "id" not in raw:
                return Incoming(raw["method"], None, params=params)
    try:
        message = _adapter.validate_python(raw, by_name=False)
    except pydantic.ValidationError as error:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in error.errors()[:4])
        raise BadMessage(INVALID_REQUEST, f"Invalid JSON-RPC 2.0 message ({problems[:300]})") from None
    if isinstance(message, JSONRPCResponse | JSONRPCError):
        return Incoming(None, message.id, message)
    method = getattr(message, "method", None)
    params = getattr(message, "params", None)
    return Incoming(method, getattr(message, "id", None), params=params if isinstance(params, dict) else None)
