"""Run in a pod by e2e/test_oauth.py: the official MCP client, with its own client credentials OAuth support,
against an McpServer whose spec.auth.oauth names the cluster's OpenID provider. It starts from the Service's
URL alone: the 401 names the resource metadata, which names the issuer, whose metadata names the token
endpoint. Prints one JSON object: what it saw.

    python3 oauth_client.py URL ISSUER CLIENT_ID CLIENT_SECRET
"""

import asyncio
import json
import sys
from typing import Any

import httpx2
from mcp import Client
from mcp.client.auth.extensions.client_credentials import ClientCredentialsOAuthProvider
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.auth import OAuthClientInformationFull, OAuthToken


class Storage:
    def __init__(self) -> None:
        self.tokens: OAuthToken | None = None
        self.client: OAuthClientInformationFull | None = None

    async def get_tokens(self) -> OAuthToken | None:
        return self.tokens

    async def set_tokens(self, tokens: OAuthToken) -> None:
        self.tokens = tokens

    async def get_client_info(self) -> OAuthClientInformationFull | None:
        return self.client

    async def set_client_info(self, client_info: OAuthClientInformationFull) -> None:
        self.client = client_info


async def structured(client: Client, tool: str) -> dict[str, Any]:
    result = await client.call_tool(tool, {})
    assert not result.is_error, result
    return dict(result.structured_content or {})


async def main(url: str, issuer: str, client_id: str, secret: str) -> dict[str, Any]:
    seen: dict[str, Any] = {}
    async with httpx2.AsyncClient(timeout=30) as plain:
        refused = await plain.post(
            url,
            json={"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}},
            headers={"Accept": "application/json, text/event-stream", "Mcp-Protocol-Version": "2025-11-25"},
        )
        seen["without_token"] = refused.status_code
        seen["challenge"] = refused.headers.get("www-authenticate", "")
    auth = ClientCredentialsOAuthProvider(
        server_url=url,
        storage=Storage(),
        client_id=client_id,
        client_secret=secret,
        scope="tools:read tools:admin",
        issuer=issuer,
    )
    async with (
        # No keep-alive: the Service balances connections, not requests; a new connection per call spreads them.
        httpx2.AsyncClient(auth=auth, timeout=30, limits=httpx2.Limits(max_keepalive_connections=0)) as http,
        Client(streamable_http_client(url, http_client=http), mode="legacy") as client,  # type: ignore[arg-type]
    ):
        seen["subject"], seen["issuer"] = [(await structured(client, "caller_info"))[k] for k in ("subject", "issuer")]
        replicas = {(await structured(client, "whoami"))["replica"] for _ in range(12)}
        seen["replicas"] = sorted(replicas)
        seen["counts"] = [(await structured(client, "session_increment"))["result"] for _ in range(5)]
        seen["tools"] = sorted(t.name for t in (await client.list_tools()).tools)
    return seen


if __name__ == "__main__":
    print(json.dumps(asyncio.run(main(*sys.argv[1:5]))))
