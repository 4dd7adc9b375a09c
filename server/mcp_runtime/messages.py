"""A handshake-era POST body, parsed and validated once, and what the router needs to know of it."""

from __future__ import annotations

from dataclasses import dataclass

import pydantic
import pydantic_core
from mcp_types import (
    INVALID_REQUEST,
    PARSE_ERROR,
    JSONRPCError,
    JSONRPCMessage,
    JSONRPCNotification,
    JSONRPCRequest,
    JSONRPCResponse,
    jsonrpc_message_adapter,
)


class BadMessage(Exception):
    """The body is not one valid JSON-RPC 2.0 message: the answer is 400 with this JSON-RPC error."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True, slots=True)
class Incoming:
    message: JSONRPCMessage

    @property
    def is_request(self) -> bool:
        return isinstance(self.message, JSONRPCRequest)

    @property
    def is_notification(self) -> bool:
        return isinstance(self.message, JSONRPCNotification)

    @property
    def is_answer(self) -> bool:
        """The client's answer (result or error) to a server-to-client request."""
        return isinstance(self.message, JSONRPCResponse | JSONRPCError)

    @property
    def method(self) -> str | None:
        return self.message.method if isinstance(self.message, JSONRPCRequest | JSONRPCNotification) else None

    @property
    def request_key(self) -> str | None:
        """A request's id as the SDK transport keys it (`str(id)`, so 1 and "1" are the same request)."""
        return str(self.message.id) if isinstance(self.message, JSONRPCRequest) else None

    @property
    def answer_id(self) -> int | str | None:
        return self.message.id if isinstance(self.message, JSONRPCResponse | JSONRPCError) else None


def parse(body: bytes) -> Incoming:
    """Parse a POST body; raises BadMessage for anything that is not one JSON-RPC 2.0 message."""
    try:
        raw = pydantic_core.from_json(body)
    except ValueError as error:
        raise BadMessage(PARSE_ERROR, f"Parse error: {error}") from None
    if isinstance(raw, dict) and "method" in raw and raw.get("jsonrpc") == "2.0":
        # A request or notification: the SDK transport validates it again, whole, so only its shape is read
        # here (the router needs its kind and id; the common path pays for one full validation, not two).
        request_id = raw.get("id")
        if isinstance(request_id, int | str) and not isinstance(request_id, bool) and isinstance(raw["method"], str):
            return Incoming(JSONRPCRequest.model_construct(jsonrpc="2.0", id=request_id, method=raw["method"]))
    try:
        message = jsonrpc_message_adapter.validate_python(raw, by_name=False)
    except pydantic.ValidationError as error:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in error.errors()[:4])
        raise BadMessage(INVALID_REQUEST, f"Invalid JSON-RPC 2.0 message ({problems[:300]})") from None
    return Incoming(message)
