"""This runtime as one OAuth protected resource: who its authorization server is, and an access token checked
the way its form calls for (a JWT against the issuer's keys; anything else by introspection, when set up).

The authorization server's metadata is read once, when first needed (and again after a failure): a runtime
starts, and stays ready, while its authorization server is down; a request that needs it meanwhile gets 503.
"""

from __future__ import annotations

import asyncio
from collections.abc import Collection
from typing import Any

import httpx2

from mcp_runtime.web.oauth.introspection import IntrospectionUnavailable, Introspector
from mcp_runtime.web.oauth.keys import KeysUnavailable, SigningKeys
from mcp_runtime.web.oauth.metadata import (
    MetadataUnavailable,
    ServerMetadata,
    discover,
    resource_metadata,
    resource_metadata_url,
)
from mcp_runtime.web.oauth.scopes import ToolScopes
from mcp_runtime.web.oauth.tokens import JwtVerifier, TokenRejected, Verified

Unavailable = (KeysUnavailable, IntrospectionUnavailable, MetadataUnavailable)


class OAuthResource:
    def __init__(
        self,
        *,
        resource: str,
        issuer: str,
        audiences: Collection[str],
        required_scopes: Collection[str],
        scopes_supported: Collection[str],
        algorithms: Collection[str],
        leeway_seconds: float,
        metadata_url: str | None = None,
        jwks_url: str | None = None,
        introspection_client: tuple[str, str] | None = None,
        timeout: float = 5.0,
        jwks_min_refresh_seconds: float = 30.0,
        jwks_max_age_seconds: float = 3600.0,
        introspection_cache_seconds: float = 60.0,
        tool_scopes: ToolScopes | None = None,
        http: httpx2.AsyncClient | None = None,
    ) -> None:
        self.resource = resource
        self.tool_scopes = tool_scopes or ToolScopes({})
        self.issuer = issuer
        self.required_scopes = frozenset(required_scopes)
        self.scopes_supported = sorted(set(scopes_supported) | self.required_scopes)
        self.metadata_url = resource_metadata_url(resource)
        self.timeout = timeout
        self.http = http or httpx2.AsyncClient(timeout=timeout, follow_redirects=False)
        self._server_metadata_url = metadata_url
        self._jwks_url = jwks_url
        self._server: ServerMetadata | None = None
        self._discovering: asyncio.Lock | None = None
        accepted = [resource, *audiences]
        self.keys = SigningKeys(
            self._fetch_jwks,
            timeout=timeout,
            min_refresh_seconds=jwks_min_refresh_seconds,
            max_age_seconds=jwks_max_age_seconds,
        )
        self.jwt = JwtVerifier(
            self.keys, issuer=issuer, audiences=accepted, algorithms=algorithms, leeway_seconds=leeway_seconds
        )
        self._introspection_client = introspection_client
        self._introspection_cache_seconds = introspection_cache_seconds
        self._accepted = accepted
        self._introspector: Introspector | None = None

    def document(self) -> dict[str, Any]:
        """The Protected Resource Metadata served at `metadata_url`."""
        return resource_metadata(self.resource, self.issuer, self.scopes_supported)

    async def verify(self, token: str) -> Verified:
        """The bearer of a valid token; TokenRejected (401), or one of `Unavailable` (503)."""
        if token.count(".") == 2:
            return await self.jwt.verify(token)
        if self._introspection_client is None:
            raise TokenRejected("not a JWT, and this server introspects no opaque tokens")
        introspector = await self._introspection()
        return await introspector.verify(token)

    async def server_metadata(self) -> ServerMetadata:
        if self._server is not None:
            return self._server
        if self._discovering is None:
            self._discovering = asyncio.Lock()
        async with self._discovering:
            if self._server is None:
                self._server = await asyncio.wait_for(
                    discover(self.http, self.issuer, self._server_metadata_url), self.timeout
                )
        return self._server

    async def _fetch_jwks(self) -> Any:
        url = self._jwks_url or (await self.server_metadata()).jwks_uri
        if url is None:
            raise MetadataUnavailable("the authorization server publishes no jwks_uri")
        response = await self.http.get(url, headers={"Accept": "application/json"})
        response.raise_for_status()
        return response.json()

    async def _introspection(self) -> Introspector:
        if self._introspector is None:
            assert self._introspection_client is not None
            try:
                endpoint = (await self.server_metadata()).introspection_endpoint
            except TimeoutError:
                raise MetadataUnavailable("the authorization server's metadata did not arrive in time") from None
            if endpoint is None:
                raise MetadataUnavailable("the authorization server publishes no introspection_endpoint")
            client_id, secret = self._introspection_client
            self._introspector = Introspector(
                self.http,
                endpoint=endpoint,
                client_id=client_id,
                client_secret=secret,
                issuer=self.issuer,
                audiences=self._accepted,
                cache_seconds=self._introspection_cache_seconds,
            )
        return self._introspector
