"""The official MCP client's own OAuth support against mcp-runtime and a real OpenID provider: it finds the
authorization server from the runtime's 401 alone (Protected Resource Metadata, then the server's metadata),
gets its token through a real grant, and keeps its session across replicas and token refreshes.

- a machine: the SDK's client credentials provider;
- a person: the SDK's authorization code flow with PKCE, registering itself (RFC 7591), the login pages
  driven as a browser would; access tokens live 3 s, so the client refreshes them mid-session.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import httpx2
import mcp_types as types
import pytest
from mcp import Client
from mcp.client.auth import OAuthClientProvider
from mcp.client.auth.extensions.client_credentials import ClientCredentialsOAuthProvider
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.auth import AuthorizationCodeResult, OAuthClientInformationFull, OAuthClientMetadata, OAuthToken

from tests.support.clients import Era, client_mode
from tests.support.oauth_fleet import Fleet, fleet_of
from tests.support.oidc import log_in
from tests.support.redis_server import RedisServer, start_redis


class MemoryStorage:
    """The SDK's TokenStorage, in memory (counting the tokens it was given)."""

    def __init__(self) -> None:
        self.tokens: OAuthToken | None = None
        self.client: OAuthClientInformationFull | None = None
        self.given: list[OAuthToken] = []

    async def get_tokens(self) -> OAuthToken | None:
        return self.tokens

    async def set_tokens(self, tokens: OAuthToken) -> None:
        self.tokens = tokens
        self.given.append(tokens)

    async def get_client_info(self) -> OAuthClientInformationFull | None:
        return self.client

    async def set_client_info(self, client_info: OAuthClientInformationFull) -> None:
        self.client = client_info


@pytest.fixture(scope="module")
def redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = start_redis(tmp_path_factory.mktemp("redis"))
    yield server
    server.stop()


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory, redis: RedisServer) -> Iterator[Fleet]:
    with fleet_of(tmp_path_factory.mktemp("oauth-clients"), redis, access_ttl=3) as found:
        yield found


def structured(result: types.CallToolResult) -> Any:
    assert not result.is_error, result
    return result.structured_content


async def replicas_seen(client: Client, calls: int) -> set[str]:
    seen = set()
    for _ in range(calls):
        seen.add(structured(await client.call_tool("whoami", {}))["replica"])
    return seen


@pytest.mark.parametrize("era", ["handshake", "modern"])
def test_a_machine_client_discovers_the_issuer_from_the_401(fleet: Fleet, era: Era) -> None:
    storage = MemoryStorage()
    auth = ClientCredentialsOAuthProvider(
        server_url=fleet.url,
        storage=storage,
        client_id="machine",
        client_secret="machine-secret",
        scope="tools:read tools:admin",
        issuer=fleet.provider.issuer,
    )

    async def run() -> None:
        async with httpx2.AsyncClient(auth=auth, timeout=30) as http:
            client = Client(streamable_http_client(fleet.url, http_client=http), mode=client_mode(era))  # type: ignore[arg-type]
            async with client:
                who = structured(await client.call_tool("caller_info", {}))
                assert who["subject"] == "machine" and who["issuer"] == fleet.provider.issuer
                assert len(await replicas_seen(client, 6)) == 3  # every replica took this client's token
                if era == "handshake":
                    values = [structured(await client.call_tool("session_increment", {}))["result"] for _ in range(4)]
                    assert values == [1, 2, 3, 4]

    asyncio.run(run())
    assert storage.given, "the client never got a token"


def test_a_person_logs_in_and_keeps_the_session_across_refreshes(fleet: Fleet) -> None:
    """Authorization code with PKCE after registering itself; access tokens live 3 s and are refreshed with
    the refresh token at least three times, in the same session, on every replica."""
    storage = MemoryStorage()
    authorization: list[str] = []

    async def redirect(url: str) -> None:
        authorization.append(url)

    async def callback() -> AuthorizationCodeResult:
        found = await asyncio.to_thread(log_in, authorization[-1], "alice")
        return AuthorizationCodeResult(code=found["code"], state=found.get("state"), iss=found.get("iss"))

    auth = OAuthClientProvider(
        server_url=fleet.url,
        client_metadata=OAuthClientMetadata(
            client_name="mcp-fleet test",
            redirect_uris=["http://127.0.0.1:9/callback"],
            grant_types=["authorization_code", "refresh_token"],
            response_types=["code"],
            token_endpoint_auth_method="none",
            scope="openid offline_access tools:read tools:admin",
        ),
        storage=storage,
        redirect_handler=redirect,
        callback_handler=callback,
    )

    async def run() -> list[int]:
        values = []
        async with httpx2.AsyncClient(auth=auth, timeout=30) as http:
            client = Client(streamable_http_client(fleet.url, http_client=http), mode=client_mode("handshake"))  # type: ignore[arg-type]
            async with client:
                who = structured(await client.call_tool("caller_info", {}))
                assert who["subject"] == "alice"
                for _ in range(4):
                    for _ in range(3):  # round robin: each replica once with each token
                        values.append(structured(await client.call_tool("session_increment", {}))["result"])
                    await asyncio.sleep(3.5)  # the access token expires; the next call refreshes it
        return values

    values = asyncio.run(run())
    assert values == list(range(1, 13))
    assert len(authorization) == 1  # one login; every later token came from the refresh token
    assert len(storage.given) >= 4, storage.given
    assert len({t.access_token for t in storage.given}) == len(storage.given)
