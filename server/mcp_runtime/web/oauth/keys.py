"""The issuer's signing keys (its JWKS), cached.

- A token whose `kid` the cache knows is checked with no fetch: a JWKS endpoint that is down or slow stalls
  nothing while the keys it published last are known.
- An unknown `kid` (the issuer rotated its keys) fetches the set again, at most once per `min_refresh_seconds`,
  one fetch for every request waiting on it, each bounded by `timeout`; a key still unknown then is no key.
- The set is fetched again in the background once it is `max_age_seconds` old; until a fetch succeeds the
  known keys stay in use.
- Bounded: a set of more than `max_keys` keys keeps its first `max_keys`; keys that are not for signatures, or
  whose type joserfc does not know, are skipped.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from joserfc.errors import JoseError
from joserfc.jwk import ECKey, OKPKey, RSAKey

logger = logging.getLogger(__name__)

Key = RSAKey | ECKey | OKPKey
_KEY_TYPES: dict[str, type[Key]] = {"RSA": RSAKey, "EC": ECKey, "OKP": OKPKey}  # never "oct": no shared secrets


class KeysUnavailable(Exception):
    """No key set is known, and the issuer's JWKS could not be read."""


def parse_key_set(document: Any, max_keys: int) -> dict[str | None, Key]:
    """The signature keys of a JWKS document, by `kid` (a key without one under None)."""
    if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
        raise ValueError("not a JWK set (no 'keys' list)")
    keys: dict[str | None, Key] = {}
    for entry in document["keys"]:
        if len(keys) >= max_keys:
            break
        if not isinstance(entry, dict) or entry.get("use", "sig") != "sig":
            continue
        key_type = _KEY_TYPES.get(str(entry.get("kty")))
        if key_type is None:
            continue
        public = {k: v for k, v in entry.items() if k not in ("d", "p", "q", "dp", "dq", "qi")}
        try:
            key = key_type.import_key(public)
        except (JoseError, ValueError, TypeError) as error:
            logger.warning("skipped a JWK the issuer published (kid %r): %s", entry.get("kid"), error)
            continue
        kid = entry.get("kid")
        keys[kid if isinstance(kid, str) else None] = key
    return keys


class SigningKeys:
    def __init__(
        self,
        fetch: Callable[[], Awaitable[Any]],
        *,
        timeout: float = 5.0,
        min_refresh_seconds: float = 30.0,
        max_age_seconds: float = 3600.0,
        max_keys: int = 64,
    ) -> None:
        self._fetch = fetch
        self.timeout = timeout
        self.min_refresh_seconds = min_refresh_seconds
        self.max_age_seconds = max_age_seconds
        self.max_keys = max_keys
        self._keys: dict[str | None, Key] | None = None
        self.generation = 0  # changes whenever the set of keys does (what was verified before may not hold)
        self._fetched_at = 0.0  # monotonic time of the last fetch that succeeded
        self._tried_at = -float("inf")  # of the last attempt
        self._refresh: asyncio.Task[None] | None = None

    async def key_for(self, kid: str | None) -> Key | None:
        """The key a token names (None: no such key, even after a fetch allowed now)."""
        if self._keys is None:
            await self._refreshed(force=True)
        elif time.monotonic() - self._fetched_at > self.max_age_seconds:
            self._start_refresh()  # in the background: the known keys serve meanwhile
        assert self._keys is not None
        key = self._lookup(kid)
        if key is None and time.monotonic() - self._tried_at >= self.min_refresh_seconds:
            try:
                await self._refreshed(force=False)
            except KeysUnavailable as error:
                logger.warning("signing keys not refreshed for an unknown kid %r: %s", kid, error)
            key = self._lookup(kid)
        return key

    def _lookup(self, kid: str | None) -> Key | None:
        keys = self._keys or {}
        if kid is not None:
            return keys.get(kid)
        return next(iter(keys.values())) if len(keys) == 1 else None  # no kid: only a one-key set is unambiguous

    def _start_refresh(self) -> asyncio.Task[None]:
        if self._refresh is None or self._refresh.done():
            self._refresh = asyncio.get_running_loop().create_task(self._load())
        return self._refresh

    async def _refreshed(self, *, force: bool) -> None:
        """Wait (bounded) for one fetch shared by every waiter; KeysUnavailable when none is known after it."""
        task = self._start_refresh()
        try:
            await asyncio.wait_for(asyncio.shield(task), self.timeout)
        except TimeoutError:
            if self._keys is None:
                raise KeysUnavailable(f"the JWKS did not arrive within {self.timeout:g}s") from None
            return
        if self._keys is None:
            raise KeysUnavailable("the issuer's JWKS could not be read")

    async def _load(self) -> None:
        self._tried_at = time.monotonic()
        try:
            document = await asyncio.wait_for(self._fetch(), self.timeout)
            keys = parse_key_set(document, self.max_keys)
        except Exception as error:
            logger.warning("could not read the issuer's JWKS: %r", error)
            return
        if self._keys is None or _fingerprint(keys) != _fingerprint(self._keys):
            self.generation += 1
        self._keys, self._fetched_at = keys, time.monotonic()
        logger.info("signing keys loaded: %s", ", ".join(str(k) for k in keys) or "none")


def _fingerprint(keys: dict[str | None, Key]) -> set[tuple[str | None, str]]:
    return {(kid, key.thumbprint()) for kid, key in keys.items()}
