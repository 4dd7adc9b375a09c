"""Who is calling, and whether the request may reach the MCP endpoint at all.

- Bearer tokens from `MCP_AUTH_TOKEN_FILE` (one a line); the principal is a hash of the token, never the token.
- DNS-rebinding protection: the Host and Origin headers checked against `MCP_ALLOWED_HOSTS` and
  `MCP_ALLOWED_ORIGINS` (`name:*` matches any port, `*` matches anything).
- Every refusal is a 4xx with a JSON-RPC error body.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path

from starlette.responses import Response

from mcp_runtime.web.errors import error_response
from mcp_runtime.web.head import RequestHead


@dataclass(frozen=True, slots=True)
class Principal:
    """The caller of one request: `owner` binds sessions and handles; `client_key` keys the per-client cap."""

    owner: str | None
    client_key: str


current_principal: ContextVar[Principal | None] = ContextVar("mcp_runtime_principal", default=None)


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def load_tokens(path: Path) -> frozenset[str]:
    """The sha256 digests of the tokens in `path`; blank lines and `#` comments are skipped."""
    tokens = [line.strip() for line in path.read_text().splitlines()]
    return frozenset(token_digest(t) for t in tokens if t and not t.startswith("#"))


def _matches(value: str, patterns: Iterable[str]) -> bool:
    for pattern in patterns:
        if pattern == "*" or value == pattern:
            return True
        if pattern.endswith(":*") and value.startswith(pattern[:-1]):
            return True
    return False


class RequestGuard:
    """Checks a request to the MCP endpoint before anything else reads it."""

    def __init__(
        self, *, allowed_hosts: list[str], allowed_origins: list[str], token_digests: frozenset[str] | None
    ) -> None:
        self.allowed_hosts = allowed_hosts
        self.allowed_origins = allowed_origins
        self.token_digests = token_digests

    def check_headers(self, head: RequestHead) -> Response | None:
        host = head.host or ""
        if not _matches(host, self.allowed_hosts):
            return error_response(421, f"Host {host[:100]!r} is not allowed (MCP_ALLOWED_HOSTS)")
        origin = head.origin
        if origin is not None and not _matches(origin, self.allowed_origins):
            return error_response(403, f"Origin {origin[:100]!r} is not allowed (MCP_ALLOWED_ORIGINS)")
        if head.method == "POST":
            content_type = (head.content_type or "").split(";")[0].strip().lower()
            if content_type != "application/json":
                return error_response(415, "Unsupported Media Type: Content-Type must be application/json")
        return None

    def authenticate(self, head: RequestHead) -> Principal | Response:
        """The request's principal, or a 401 answer."""
        if self.token_digests is None:
            return Principal(owner=None, client_key=f"addr:{head.client}")
        authorization = head.authorization or ""
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() == "bearer" and token:
            digest = token_digest(token.strip())
            for known in self.token_digests:
                if hmac.compare_digest(digest, known):
                    owner = f"token:{digest[:32]}"
                    return Principal(owner=owner, client_key=owner)
        return error_response(
            401,
            "Unauthorized: a valid bearer token is required",
            headers={"WWW-Authenticate": 'Bearer realm="mcp"'},
        )
