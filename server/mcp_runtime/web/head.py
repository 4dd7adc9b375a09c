"""The few request headers the runtime reads, parsed once per request."""

from __future__ import annotations

from dataclasses import dataclass

from mcp_types.version import HANDSHAKE_PROTOCOL_VERSIONS
from starlette.types import Scope

_WANTED = {
    b"mcp-session-id": "session_id",
    b"mcp-protocol-version": "protocol_version",
    b"content-type": "content_type",
    b"content-length": "content_length",
    b"host": "host",
    b"origin": "origin",
    b"authorization": "authorization",
    b"accept": "accept",
    b"last-event-id": "last_event_id",
}


@dataclass(slots=True)
class RequestHead:
    method: str
    client: str
    session_id: str | None = None
    protocol_version: str | None = None
    content_type: str | None = None
    content_length: str | None = None
    host: str | None = None
    origin: str | None = None
    authorization: str | None = None
    accept: str | None = None
    last_event_id: str | None = None

    @property
    def modern(self) -> bool:
        """A modern-era request (protocol 2026-07-28, later or unknown), routed on MCP-Protocol-Version."""
        version = self.protocol_version
        return version is not None and version not in HANDSHAKE_PROTOCOL_VERSIONS

    @property
    def era(self) -> str:
        return "modern" if self.modern else "handshake"


def read_head(scope: Scope) -> RequestHead:
    client = scope.get("client")
    head = RequestHead(scope["method"], client[0] if client else "unknown")
    for name, value in scope["headers"]:
        attribute = _WANTED.get(name)
        if attribute is not None and getattr(head, attribute) is None:
            setattr(head, attribute, value.decode("latin-1"))
    return head


def accepts(head: RequestHead) -> tuple[bool, bool]:
    """(JSON, SSE): what the request's Accept header takes, wildcards included (RFC 9110)."""
    types = [part.split(";")[0].strip().lower() for part in (head.accept or "").split(",")]
    anything = "*/*" in types
    json_ok = anything or "application/json" in types or "application/*" in types
    sse_ok = anything or "text/event-stream" in types or "text/*" in types
    return json_ok, sse_ok


def is_json(head: RequestHead) -> bool:
    """Whether the request's Content-Type is application/json."""
    content_type = (head.content_type or "").split(";")[0]
    return any(part.strip().lower() == "application/json" for part in content_type.split(","))
