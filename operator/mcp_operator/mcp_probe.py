"""Does the fleet answer MCP, across replicas? One probe of an McpServer, with the official MCP client.

Through the Service: a 2026-07-28 `server/discover` and a tool list (resources and prompts counted when the
server has them); then a handshake-era `initialize`, and one request of that session sent to **each** ready
server pod directly (its IP, with the Service's Host so the DNS-rebinding guard accepts it), each of which
must serve it; then the session is deleted. Bounded in time as a whole.

The Service is reached at its ClusterIP, with its DNS name as Host: the same from a pod and from an operator
run on a node. I/O only; what the result means is `verification.py`'s.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import anyio
import httpx2
from mcp import Client
from mcp.client.auth.utils import (
    build_oauth_authorization_server_metadata_discovery_urls,
    handle_auth_metadata_response,
)
from mcp.client.streamable_http import streamable_http_client

from mcp_operator.verification import ProbeResult, Step

HANDSHAKE_MODE = "legacy"  # the official client's name for the handshake era
DISCOVER_MODE = "auto"  # the official client's server/discover probe (it would fall back to initialize)
HANDSHAKE_VERSION = "2025-11-25"
ACCEPT = "application/json, text/event-stream"


@dataclass(frozen=True)
class OAuthProbe:
    """spec.auth.oauth as the probe needs it: the issuer, the resource, and the probe client (None: not given)."""

    issuer: str
    resource: str
    client: tuple[str, str] | None = None  # (id, secret)
    scopes: tuple[str, ...] = ()


@dataclass(frozen=True)
class Target:
    """Where and how to reach one McpServer's fleet."""

    service_ip: str
    port: int
    path: str
    host: str  # the Service's DNS name (and port), sent as Host
    pods: Sequence[tuple[str, str, int]]  # ready server pods: (name, IP, container port)
    token: str | None = None
    oauth: OAuthProbe | None = None  # the servers take OAuth access tokens: where the probe gets one
    timeout: float = 20.0
    headers: dict[str, str] = field(default_factory=dict)

    def url(self, ip: str, port: int) -> str:
        address = f"[{ip}]" if ":" in ip else ip
        return f"http://{address}:{port}{self.path}"


def _http(target: Target) -> httpx2.AsyncClient:
    headers = {"Host": target.host, **target.headers}
    if target.token:
        headers["Authorization"] = f"Bearer {target.token}"
    return httpx2.AsyncClient(headers=headers, timeout=target.timeout)


async def probe(target: Target) -> ProbeResult:
    """The probe's result; never raises for what the server does (the failing step says it)."""
    result = ProbeResult()
    try:
        with anyio.fail_after(target.timeout):
            if target.oauth is not None and target.token is None:
                token = await _access_token(target, target.oauth, result)
                if token is None:
                    return result
                target = replace(target, token=token)
            await _modern(target, result)
            await _handshake(target, result)
    except TimeoutError:
        result.fail(result.step, None, f"no answer within {target.timeout:g}s")
    return result


async def _access_token(target: Target, oauth: OAuthProbe, result: ProbeResult) -> str | None:
    """An access token for the probe (client credentials at the issuer's token endpoint, for the resource);
    without a probe client, a check that the servers ask for one, and why the probe stops there."""
    result.step = Step.AUTHORIZE
    if oauth.client is None:
        await _check_challenge(target, oauth, result)
        return None
    try:
        async with httpx2.AsyncClient(timeout=target.timeout) as issuer:  # (no Host of the Service's)
            return await _client_credentials(issuer, oauth)
    except (httpx2.HTTPError, ValueError, KeyError) as error:
        result.fail(Step.AUTHORIZE, None, f"no token for the probe client from {oauth.issuer}: {error}")
        return None


async def _check_challenge(target: Target, oauth: OAuthProbe, result: ProbeResult) -> None:
    """Without a token, /mcp must answer 401 naming its resource metadata; the probe then says what to set."""
    body = {"jsonrpc": "2.0", "id": "verify", "method": "tools/list", "params": {}}
    headers = {"Accept": ACCEPT, "Mcp-Protocol-Version": HANDSHAKE_VERSION}
    try:
        async with _http(target) as http:
            response = await http.post(target.url(target.service_ip, target.port), json=body, headers=headers)
    except httpx2.HTTPError as error:
        result.fail(Step.AUTHORIZE, None, f"{type(error).__name__}: {error}")
        return
    challenge = response.headers.get("www-authenticate", "")
    if response.status_code != 401 or "resource_metadata=" not in challenge:
        result.fail(Step.AUTHORIZE, None, f"without a token /mcp answered HTTP {response.status_code}")
        return
    result.unauthenticated = (
        f"the servers ask for an access token from {oauth.issuer} (401 with their resource metadata); "
        "set spec.auth.oauth.probeClient to a client of it (client credentials; its Secret readable) for the "
        "operator to probe MCP across the pods"
    )


async def _client_credentials(http: httpx2.AsyncClient, oauth: OAuthProbe) -> str:
    """The client credentials grant, at the token endpoint the issuer's metadata names (found where the
    official client looks: RFC 8414, then OpenID discovery)."""
    assert oauth.client is not None
    token_endpoint = None
    for url in build_oauth_authorization_server_metadata_discovery_urls(oauth.issuer, oauth.resource):
        response = await http.get(url)
        found, metadata = await handle_auth_metadata_response(response)
        if metadata is not None:
            token_endpoint = str(metadata.token_endpoint)
            break
        if not found:  # a server error: the discovery stops there, as the official client's does
            break
    if token_endpoint is None:
        raise ValueError("its metadata was found nowhere")
    client_id, secret = oauth.client
    data = {"grant_type": "client_credentials", "resource": oauth.resource}
    if oauth.scopes:
        data["scope"] = " ".join(oauth.scopes)
    response = await http.post(token_endpoint, data=data, auth=httpx2.BasicAuth(client_id, secret))
    if response.status_code != 200:
        raise ValueError(f"HTTP {response.status_code}: {response.text[:200]}")
    return str(response.json()["access_token"])


async def _modern(target: Target, result: ProbeResult) -> None:
    result.step = Step.DISCOVER
    url = target.url(target.service_ip, target.port)
    try:
        async with _http(target) as http:
            client = Client(streamable_http_client(url, http_client=http), mode=DISCOVER_MODE)  # type: ignore[arg-type]
            async with client:
                discovered = client.session.discover_result
                if discovered is None:
                    result.fail(Step.DISCOVER, None, "server/discover was refused; the server speaks only initialize")
                    return
                result.modern_version = client.protocol_version
                info = client.server_info
                if info is not None:
                    result.server_name, result.server_version = info.name, info.version
                capabilities = discovered.capabilities
                result.step = Step.TOOLS
                result.tools = len((await client.list_tools()).tools)
                if capabilities.resources is not None:
                    result.step = Step.RESOURCES
                    result.resources = len((await client.list_resources()).resources)
                if capabilities.prompts is not None:
                    result.step = Step.PROMPTS
                    result.prompts = len((await client.list_prompts()).prompts)
    except Exception as error:  # the server's failure, in the words of the client
        result.fail(result.step, None, _said(error))


async def _handshake(target: Target, result: ProbeResult) -> None:
    if result.failed:
        return
    result.step = Step.INITIALIZE
    url = target.url(target.service_ip, target.port)
    sessions: list[str] = []

    def note_session(response: httpx2.Response) -> None:
        if sid := response.headers.get("mcp-session-id"):
            sessions.append(sid)

    try:
        async with _http(target) as http:
            http.event_hooks["response"].append(_async(note_session))
            client = Client(streamable_http_client(url, http_client=http), mode=HANDSHAKE_MODE)  # type: ignore[arg-type]
            async with client:
                result.handshake_version = client.protocol_version
                info = client.server_info
                if info is not None and not result.server_name:
                    result.server_name, result.server_version = info.name, info.version
                if not sessions:
                    result.fail(Step.INITIALIZE, None, "the server gave no Mcp-Session-Id")
                    return
                result.step = Step.CROSS_REPLICA
                await _each_pod(target, http, sessions[0], client.protocol_version, result)
                result.step = Step.DELETE
            # Leaving the client sent DELETE (the SDK's terminate_on_close).
    except Exception as error:
        result.fail(result.step, None, _said(error))


async def _each_pod(target: Target, http: httpx2.AsyncClient, session: str, version: str, result: ProbeResult) -> None:
    """One `tools/list` of the session on each ready pod, pinned to its IP.

    The session was opened through the Service, on a pod the probe cannot name. When fewer pods serve it than
    refuse it, the pod that opened it is the odd one out (its sessions are its own): the verdict names the pods
    that served it, not the healthy majority that did not know it."""
    headers = {"Mcp-Session-Id": session, "Mcp-Protocol-Version": version, "Accept": ACCEPT}
    refused: list[tuple[str, str]] = []
    for name, ip, port in target.pods:
        body = {"jsonrpc": "2.0", "id": f"verify-{name}", "method": "tools/list", "params": {}}
        try:
            response = await http.post(target.url(ip, port), json=body, headers=headers)
        except httpx2.HTTPError as error:
            result.fail(Step.CROSS_REPLICA, name, f"{type(error).__name__}: {error}")
            return
        answer = _json_rpc(response)
        if response.status_code != 200 or "result" not in answer:
            said = (answer.get("error") or {}).get("message") or response.text[:200]
            refused.append((name, f"HTTP {response.status_code}: {said}"))
        else:
            result.served_by.append(name)
    if not refused:
        return
    if 0 < len(result.served_by) < len(refused):
        others = ", ".join(name for name, _ in refused)
        odd = ", ".join(result.served_by)
        said = f"{refused[0][1]} on the {len(refused)} other pods ({others}) for a session it opened"
        result.fail(Step.CROSS_REPLICA, odd, said)
    else:
        name, said = refused[0]
        result.fail(Step.CROSS_REPLICA, name, said)


def _json_rpc(response: httpx2.Response) -> dict[str, Any]:
    """The JSON-RPC message of a JSON or SSE answer ({} when there is none)."""
    text = response.text
    if response.headers.get("content-type", "").startswith("text/event-stream"):
        data = [line[5:].strip() for line in text.splitlines() if line.startswith("data:")]
        text = next((d for d in reversed(data) if d), "")
    try:
        found = json.loads(text)
    except ValueError:
        return {}
    return found if isinstance(found, dict) else {}


def _said(error: BaseException) -> str:
    """An exception as one line; the innermost of an exception group."""
    while isinstance(error, BaseExceptionGroup) and error.exceptions:
        error = error.exceptions[0]
    text = str(error) or type(error).__name__
    return text.splitlines()[0][:300]


def _async(hook: Any) -> Any:
    async def run(response: httpx2.Response) -> None:
        hook(response)

    return run
