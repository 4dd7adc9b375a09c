"""A JWT access token (RFC 9068) verified, and what it says of its bearer.

joserfc does the JOSE work: the compact form parsed, the signature checked with the issuer's key for the
token's `kid`, only with the algorithms allowed (never `none`, never a shared-secret HMAC), and the claims
checked: `iss` is the issuer, `aud` names this resource, `exp` and `nbf` within the clock skew, `sub` present.
Anything else wrong (bad base64, a nested or encrypted JWT, a header that is not JSON, a huge token) is a
`TokenRejected`, which the guard answers 401.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections import OrderedDict
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

from joserfc import jws, jwt
from joserfc.errors import JoseError

from mcp_runtime.web.oauth.keys import SigningKeys

MAX_TOKEN_BYTES = 8192
ASYMMETRIC = frozenset({"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"})
ACCEPTED_TYPES = frozenset({"at+jwt", "application/at+jwt", "jwt"})  # RFC 9068's, and what most issuers send


class TokenRejected(Exception):
    """The access token is not valid here; the message says why (for `error_description`)."""


@dataclass(frozen=True, slots=True)
class Verified:
    """A valid access token's bearer: who (issuer and subject), and what they may do (scopes)."""

    issuer: str
    subject: str
    scopes: frozenset[str]
    expires_at: float | None
    claims: Mapping[str, Any] = field(default_factory=dict)


def scopes_of(claims: Mapping[str, Any]) -> frozenset[str]:
    """`scope` (a space-separated string, RFC 9068) or `scp` (a list, as some issuers send)."""
    scope = claims.get("scope")
    if isinstance(scope, str):
        return frozenset(scope.split())
    scp = claims.get("scp")
    if isinstance(scp, list):
        return frozenset(s for s in scp if isinstance(s, str))
    if isinstance(scp, str):
        return frozenset(scp.split())
    return frozenset()


def audiences_of(claims: Mapping[str, Any]) -> list[str]:
    aud = claims.get("aud")
    if isinstance(aud, str):
        return [aud]
    if isinstance(aud, list):
        return [a for a in aud if isinstance(a, str)]
    return []


class JwtVerifier:
    """Verifies JWT access tokens; a token verified once is recognised again by its digest until it expires
    (bounded, `max_cached` tokens), so a client's every request does not pay for a signature check. The cache
    is emptied whenever the issuer's key set changes (a key rotated out takes its tokens with it)."""

    def __init__(
        self,
        keys: SigningKeys,
        *,
        issuer: str,
        audiences: Collection[str],
        algorithms: Collection[str],
        leeway_seconds: float = 30.0,
        max_cached: int = 10_000,
    ) -> None:
        unsafe = set(algorithms) - ASYMMETRIC
        if unsafe:
            raise ValueError(f"not an asymmetric signature algorithm: {', '.join(sorted(unsafe))}")
        self.keys = keys
        self.issuer = issuer
        self.audiences = frozenset(audiences)
        self.algorithms = sorted(algorithms)
        self.leeway = int(leeway_seconds)
        self.max_cached = max_cached
        self._cache: OrderedDict[bytes, Verified] = OrderedDict()
        self._cache_generation = -1

    async def verify(self, token: str) -> Verified:
        """The token's bearer; TokenRejected when it is not valid here, KeysUnavailable when no key is known."""
        if len(token) > MAX_TOKEN_BYTES:
            raise TokenRejected(f"the token is longer than {MAX_TOKEN_BYTES} bytes")
        if self._cache_generation != self.keys.generation:
            self._cache.clear()
            self._cache_generation = self.keys.generation
        digest = hashlib.sha256(token.encode()).digest()
        known = self._cache.get(digest)
        if known is not None:
            if known.expires_at is not None and known.expires_at + self.leeway < time.time():
                del self._cache[digest]
                raise TokenRejected("the token expired")
            return known
        verified = await self._verify(token)
        if self._cache_generation == self.keys.generation:  # (not if the keys changed while it was checked)
            self._cache[digest] = verified
            while len(self._cache) > self.max_cached:
                self._cache.popitem(last=False)
        return verified

    async def _verify(self, token: str) -> Verified:
        header = self._header(token)
        algorithm = header.get("alg")
        if algorithm not in self.algorithms:
            raise TokenRejected(f"signature algorithm {str(algorithm)[:20]!r} is not accepted")
        kind = str(header.get("typ", "jwt")).lower()
        if kind not in ACCEPTED_TYPES or "cty" in header or "enc" in header:
            raise TokenRejected("not a JWT access token")
        kid = header.get("kid")
        key = await self.keys.key_for(kid if isinstance(kid, str) else None)
        if key is None:
            raise TokenRejected("signed with a key the issuer does not publish")
        try:
            decoded = jwt.decode(token, key, algorithms=self.algorithms)
        except (JoseError, ValueError, TypeError) as error:
            raise TokenRejected(f"invalid token: {_reason(error)}") from None
        claims = decoded.claims
        if not isinstance(claims, dict):
            raise TokenRejected("the token's payload is not a claims object")
        self._check_claims(claims)
        exp = claims.get("exp")
        return Verified(
            issuer=self.issuer,
            subject=str(claims["sub"]),
            scopes=scopes_of(claims),
            expires_at=float(exp) if isinstance(exp, int | float) else None,
            claims=claims,
        )

    @staticmethod
    def _header(token: str) -> dict[str, Any]:
        try:
            compact = jws.extract_compact(token.encode("ascii"))
        except (JoseError, ValueError, UnicodeError, json.JSONDecodeError) as error:
            raise TokenRejected(f"malformed token: {_reason(error)}") from None
        header = compact.protected
        if not isinstance(header, dict):
            raise TokenRejected("malformed token header")
        return header

    def _check_claims(self, claims: dict[str, Any]) -> None:
        now = time.time()
        if claims.get("iss") != self.issuer:
            raise TokenRejected("issued by another issuer")
        if not self.audiences.intersection(audiences_of(claims)):
            raise TokenRejected("issued for another audience")
        sub = claims.get("sub")
        if not isinstance(sub, str) or not sub:
            raise TokenRejected("the token names no subject")
        exp = claims.get("exp")
        if not isinstance(exp, int | float) or isinstance(exp, bool):
            raise TokenRejected("the token has no expiry")
        if exp + self.leeway < now:
            raise TokenRejected("the token expired")
        nbf = claims.get("nbf")
        if isinstance(nbf, int | float) and not isinstance(nbf, bool) and nbf - self.leeway > now:
            raise TokenRejected("the token is not valid yet")


def _reason(error: BaseException) -> str:
    text = getattr(error, "description", None) or str(error) or type(error).__name__
    return str(text)[:120]
