"""Who is calling, and whether the request may reach the MCP endpoint at all.

- Bearer tokens from `MCP_AUTH_TOKEN_FILE` (one a line); the principal is a hash of the token, never the token.
- OAuth access tokens (`MCP_OAUTH_*`, `oauth/`): the principal is the token's issuer and subject, so a refreshed
  token is the same principal; a request without a valid token gets 401 with a `WWW-Authenticate` challenge
  that points to this resource's metadata, one without the scopes every request needs 403.
- DNS-rebinding protection: the Host and Origin headers checked against `MCP_ALLOWED_HOSTS` and
  `MCP_ALLOWED_ORIGINS` (`name:*` matches any port, `*` matches anything).
- Every refusal is a 4xx with a JSON-RPC error body.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from collections.abc import Iterable, Mapping
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from starlette.responses import Response

from mcp_runtime.web.errors import error_response
from mcp_runtime.web.head import RequestHead
from mcp_runtime.web.oauth.metadata import challenge
from mcp_runtime.web.oauth.resource import OAuthResource, Unavailable
from mcp_runtime.web.oauth.tokens import TokenRejected

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Principal:
    """The caller of one request: `owner` binds sessions and handles; `client_key` keys the per-client cap.
    With OAuth, also who they are (`issuer`, `subject`), what they may do (`scopes`) and the token's claims."""

    owner: str | None
    client_key: str
    issuer: str | None = None
    subject: str | None = None
    scopes: frozenset[str] = frozenset()
    claims: Mapping[str, Any] = field(default_factory=dict)


def subject_owner(issuer: str, subject: str) -> str:
    """The owner of what a person (or client) opens: the same for every token of the same issuer and subject."""
    return "sub:" + hashlib.sha256(f"{issuer}\0{subject}".encode()).hexdigest()[:32]


current_principal: ContextVar[Principal | None] = ContextVar("mcp_runtime_principal", default=None)
PRINCIPAL_KEY = "mcp_runtime.principal"  # the request's Principal in its ASGI scope, which the SDK hands to tools


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
        self,
        *,
        allowed_hosts: list[str],
        allowed_origins: list[str],
        token_digests: frozenset[str] | None,
        oauth: OAuthResource | None = None,
        retry_after: int = 1,
    ) -> None:
        self.allowed_hosts = allowed_hosts
        self.allowed_origins = allowed_origins
        self.token_digests = token_digests
        self.oauth = oauth
        self.retry_after = retry_after

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

    async def authenticate(self, head: RequestHead) -> Principal | Response:
        """The request's principal, or a 401 (403, 503) answer."""
        if self.token_digests is None and self.oauth is None:
            return Principal(owner=None, client_key=f"addr:{head.client}")
        authorization = head.authorization or ""
        scheme, _, token = authorization.partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            return self.unauthorized("a valid bearer token is required")
        if self.token_digests is not None:
            digest = token_digest(token)
            for known in self.token_digests:
                if hmac.compare_digest(digest, known):
                    owner = f"token:{digest[:32]}"
                    return Principal(owner=owner, client_key=owner)
        if self.oauth is None:
            return self.unauthorized("a valid bearer token is required")
        try:
            verified = await self.oauth.verify(token)
        except TokenRejected as rejected:
            return self.unauthorized(str(rejected), error="invalid_token")
        except Unavailable as error:
            logger.warning("an access token could not be checked: %s", error)
            return error_response(
                503,
                f"Service Unavailable: access tokens cannot be checked now ({error})",
                headers={"Retry-After": str(self.retry_after)},
            )
        missing = self.oauth.required_scopes - verified.scopes
        if missing:
            return self.insufficient_scope(self.oauth.required_scopes | verified.scopes)
        owner = subject_owner(verified.issuer, verified.subject)
        return Principal(owner, owner, verified.issuer, verified.subject, verified.scopes, verified.claims)

    def check_tool_call(self, principal: Principal, body: bytes) -> Response | None:
        """403 insufficient_scope for a `tools/call` of a tool whose scopes the caller's token lacks."""
        if self.oauth is None or not self.oauth.tool_scopes or principal.issuer is None:
            return None
        tool = self.oauth.tool_scopes.called_tool(body)
        if tool is None or not self.oauth.tool_scopes.missing(tool, principal.scopes):
            return None
        return self.insufficient_scope(self.oauth.tool_scopes.needed[tool] | principal.scopes)

    def unauthorized(self, why: str, error: str | None = None) -> Response:
        metadata = self.oauth.metadata_url if self.oauth is not None else None
        value = challenge(metadata, error=error, description=why if error else None)
        return error_response(401, f"Unauthorized: {why}", headers={"WWW-Authenticate": value})

    def insufficient_scope(self, needed: Iterable[str]) -> Response:
        """403 with the scopes the request needs (RFC 6750 section 3.1), for the client to ask for them."""
        scope = " ".join(sorted(needed))
        metadata = self.oauth.metadata_url if self.oauth is not None else None
        value = challenge(metadata, error="insufficient_scope", scope=scope)
        return error_response(403, f"Forbidden: this needs the scopes {scope}", headers={"WWW-Authenticate": value})
