"""An opaque access token asked about at the authorization server's introspection endpoint (RFC 7662).

The runtime authenticates as its own client (HTTP Basic, `client_secret_basic`). An active token's answer is
cached until it expires or for `cache_seconds`, whichever comes first (bounded in entries, by the token's
digest, never the token); an inactive one is not cached, so a token just issued is never refused for long.
"""

from __future__ import annotations

import hashlib
import time
from collections import OrderedDict
from collections.abc import Collection
from typing import Any

import httpx2

from mcp_runtime.web.oauth.tokens import MAX_TOKEN_BYTES, TokenRejected, Verified, audiences_of, scopes_of


class IntrospectionUnavailable(Exception):
    """The introspection endpoint did not answer in time, or not as RFC 7662 says."""


class Introspector:
    def __init__(
        self,
        http: httpx2.AsyncClient,
        *,
        endpoint: str,
        client_id: str,
        client_secret: str,
        issuer: str,
        audiences: Collection[str],
        cache_seconds: float = 60.0,
        max_cached: int = 10_000,
    ) -> None:
        self.http = http
        self.endpoint = endpoint
        self.auth = httpx2.BasicAuth(client_id, client_secret)
        self.issuer = issuer
        self.audiences = frozenset(audiences)
        self.cache_seconds = cache_seconds
        self.max_cached = max_cached
        self._cache: OrderedDict[str, tuple[float, Verified]] = OrderedDict()

    async def verify(self, token: str) -> Verified:
        if len(token) > MAX_TOKEN_BYTES:
            raise TokenRejected(f"the token is longer than {MAX_TOKEN_BYTES} bytes")
        digest = hashlib.sha256(token.encode()).hexdigest()
        cached = self._cache.get(digest)
        now = time.time()
        if cached is not None and cached[0] > now:
            return cached[1]
        answer = await self._ask(token)
        verified = self._verified(answer, now)
        until = min(now + self.cache_seconds, verified.expires_at or now + self.cache_seconds)
        self._cache[digest] = (until, verified)
        self._cache.move_to_end(digest)
        while len(self._cache) > self.max_cached:
            self._cache.popitem(last=False)
        return verified

    async def _ask(self, token: str) -> dict[str, Any]:
        try:
            response = await self.http.post(
                self.endpoint,
                data={"token": token, "token_type_hint": "access_token"},
                auth=self.auth,
                headers={"Accept": "application/json"},
            )
        except httpx2.HTTPError as error:
            raise IntrospectionUnavailable(f"introspection failed: {type(error).__name__}") from None
        if response.status_code != 200:
            raise IntrospectionUnavailable(f"introspection answered HTTP {response.status_code}")
        try:
            answer = response.json()
        except ValueError:
            raise IntrospectionUnavailable("introspection answered something that is not JSON") from None
        if not isinstance(answer, dict):
            raise IntrospectionUnavailable("introspection answered something that is not an object")
        return answer

    def _verified(self, answer: dict[str, Any], now: float) -> Verified:
        if answer.get("active") is not True:
            raise TokenRejected("the token is not active")
        issuer = answer.get("iss", self.issuer)
        if issuer != self.issuer:
            raise TokenRejected("issued by another issuer")
        if "aud" in answer and not self.audiences.intersection(audiences_of(answer)):
            raise TokenRejected("issued for another audience")
        # A client credentials token acts for its client: without a `sub`, the client is the subject (as RFC
        # 9068 has it for such tokens in JWT form).
        subject = answer.get("sub") or answer.get("client_id")
        if not isinstance(subject, str) or not subject:
            raise TokenRejected("the introspection answer names no subject")
        exp = answer.get("exp")
        expires = float(exp) if isinstance(exp, int | float) and not isinstance(exp, bool) else None
        if expires is not None and expires < now:
            raise TokenRejected("the token expired")
        return Verified(self.issuer, subject, scopes_of(answer), expires, answer)
