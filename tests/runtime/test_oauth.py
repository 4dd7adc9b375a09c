"""mcp-runtime as an OAuth 2.1 resource server, against a real OpenID provider (panva's oidc-provider, its own
Node.js process on loopback) and three replicas on one real Redis behind a balancer with no affinity.

Tokens come from the provider through real grants; its keys are rotated by restarting it with another set.
"""

from __future__ import annotations

import base64
import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from joserfc.jwk import RSAKey

from tests.support.oauth_fleet import OTHER_AUDIENCE, Fleet, bearer, fleet_of, oauth_env
from tests.support.oidc import new_key, running_provider
from tests.support.procs import spawn, wait_healthy
from tests.support.raw import JSON_HEADERS, MODERN_META, open_raw_session, parse_body, session_headers, tool_call
from tests.support.redis_server import RedisServer, redis_env, start_redis


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    workdir = tmp_path_factory.mktemp("oauth")
    redis = start_redis(workdir / "redis")
    try:
        with fleet_of(workdir, redis) as found:
            yield found
    finally:
        redis.stop()


def call(url: str, session: str, token: str, name: str, request_id: int = 2, **arguments: Any) -> httpx2.Response:
    headers = {**session_headers(session), **bearer(token)}
    return httpx2.post(url, json=tool_call(request_id, name, arguments), headers=headers, timeout=10)


def result_of(response: httpx2.Response, whole: bool = False) -> Any:
    assert response.status_code == 200, (response.status_code, response.text[:500])
    [message] = [m for m in parse_body(response, response.text) if "result" in m or "error" in m]
    assert "result" in message, message
    structured = message["result"]["structuredContent"]
    return structured if whole else structured["result"]


def open_session(url: str, token: str) -> str:
    response = open_raw_session(url, headers=bearer(token))
    assert response.status_code == 200, response.text[:500]
    return str(response.headers["mcp-session-id"])


# Discovery


def test_a_request_without_a_token_is_told_where_to_authenticate(fleet: Fleet) -> None:
    response = httpx2.post(fleet.url, json=tool_call(1, "add", {"a": 1, "b": 2}), headers=session_headers("x"))
    assert response.status_code == 401
    assert response.json()["error"]["message"].startswith("Unauthorized")
    challenge = response.headers["www-authenticate"]
    metadata_url = challenge.split('resource_metadata="')[1].split('"')[0]
    assert metadata_url == fleet.balancer.base + "/.well-known/oauth-protected-resource/mcp"
    document = httpx2.get(metadata_url).json()  # through the balancer, from any replica
    assert document["resource"] == fleet.url
    assert document["authorization_servers"] == [fleet.provider.issuer]
    assert "tools:read" in document["scopes_supported"]
    # ... where the authorization server says how to get a token.
    issuer = document["authorization_servers"][0]
    server = httpx2.get(f"{issuer}/.well-known/openid-configuration").json()
    assert "client_credentials" in server["grant_types_supported"] and server["token_endpoint"]
    for proc in fleet.replicas:  # each replica serves the same document, at both well-known places
        for path in ("/.well-known/oauth-protected-resource", "/.well-known/oauth-protected-resource/mcp"):
            assert httpx2.get(proc.base + path).json() == document


# The principal is the subject


def test_a_session_survives_three_token_refreshes_across_replicas(fleet: Fleet) -> None:
    token = fleet.provider.token()
    session = open_session(fleet.url, token)
    count = 0
    for _refresh in range(4):
        for proc in fleet.replicas:  # every replica, with every token
            count += 1
            assert result_of(call(proc.url, session, token, "session_increment", count)) == count
        fresh = fleet.provider.token()  # a new access token for the same client: the same subject
        assert fresh != token
        token = fresh
    assert count == 12


def test_another_subject_gets_404_on_every_replica(fleet: Fleet) -> None:
    session = open_session(fleet.url, fleet.provider.token("machine"))
    intruder = fleet.provider.token("other-machine")
    for proc in fleet.replicas:
        response = call(proc.url, session, intruder, "session_increment")
        assert response.status_code == 404, response.text
    # The owner's session is untouched by those attempts.
    assert result_of(call(fleet.url, session, fleet.provider.token("machine"), "session_increment")) == 1


def test_tools_see_their_caller(fleet: Fleet) -> None:
    token = fleet.provider.token("machine")
    session = open_session(fleet.url, token)
    for proc in fleet.replicas:
        who = result_of(call(proc.url, session, token, "caller_info"), whole=True)
        assert who == {
            "authenticated": True,
            "issuer": fleet.provider.issuer,
            "subject": "machine",
            "scopes": ["tools:admin", "tools:read"],
        }


# Tokens refused


def test_an_expired_token_is_401(fleet: Fleet) -> None:
    token = fleet.provider.token("short-lived")  # lives 2 s; the replicas allow 1 s of clock skew
    session = open_session(fleet.url, token)
    assert result_of(call(fleet.url, session, token, "add", a=1, b=2)) == 3
    time.sleep(3.5)
    for proc in fleet.replicas:
        response = call(proc.url, session, token, "add", a=1, b=2)
        assert response.status_code == 401, response.text
        assert "expired" in response.json()["error"]["message"]
    # A fresh token of the same client carries on in the same session.
    assert result_of(call(fleet.url, session, fleet.provider.token("short-lived"), "add", a=2, b=2)) == 4


def test_a_token_for_another_audience_is_401(fleet: Fleet) -> None:
    token = fleet.provider.token(resource=OTHER_AUDIENCE)
    for proc in fleet.replicas:
        response = post_with(proc.url, token)
        assert response.status_code == 401
        assert 'error="invalid_token"' in response.headers["www-authenticate"]
        assert "another audience" in response.json()["error"]["message"]


def test_a_token_without_the_required_scope_is_403_naming_it(fleet: Fleet) -> None:
    token = fleet.provider.token("machine", scope="tools:admin")  # not tools:read, which every request needs
    response = post_with(fleet.url, token)
    assert response.status_code == 403, response.text
    challenge = response.headers["www-authenticate"]
    assert 'error="insufficient_scope"' in challenge and "tools:read" in challenge.split('scope="')[1]
    assert "tools:read" in response.json()["error"]["message"]


def post_with(url: str, token: str) -> httpx2.Response:
    headers = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream", **bearer(token)}
    body = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": INIT_PARAMS}
    return httpx2.post(url, json=body, headers=headers, timeout=10)


INIT_PARAMS = {
    "protocolVersion": "2025-11-25",
    "capabilities": {},
    "clientInfo": {"name": "oauth-test", "version": "0"},
}


# Per-tool scopes


def tool_names(url: str, token: str, era: str) -> set[str]:
    if era == "handshake":
        session = open_session(url, token)
        headers = {**session_headers(session), **bearer(token)}
        body: dict[str, Any] = {"jsonrpc": "2.0", "id": 5, "method": "tools/list", "params": {}}
    else:
        headers = {**JSON_HEADERS, "mcp-protocol-version": "2026-07-28", "mcp-method": "tools/list", **bearer(token)}
        body = {"jsonrpc": "2.0", "id": 5, "method": "tools/list", "params": {"_meta": MODERN_META}}
    response = httpx2.post(url, json=body, headers=headers, timeout=10)
    assert response.status_code == 200, response.text[:500]
    [message] = [m for m in parse_body(response, response.text) if m.get("id") == 5]
    return {tool["name"] for tool in message["result"]["tools"]}


@pytest.mark.parametrize("era", ["handshake", "modern"])
def test_tools_list_shows_only_what_the_caller_may_call(fleet: Fleet, era: str) -> None:
    for proc in fleet.replicas:
        admin = tool_names(proc.url, fleet.provider.token("machine"), era)
        reader = tool_names(proc.url, fleet.provider.token("reader", scope="tools:read"), era)
        assert "session_increment" in admin and "session_increment" not in reader
        assert admin - reader == {"session_increment"}
        assert {"add", "caller_info"} <= reader


def test_a_tool_call_without_its_scope_is_403_naming_it(fleet: Fleet) -> None:
    reader = fleet.provider.token("reader", scope="tools:read")
    session = open_session(fleet.url, reader)
    for proc in fleet.replicas:
        response = call(proc.url, session, reader, "session_increment")
        assert response.status_code == 403, response.text
        challenge = response.headers["www-authenticate"]
        assert 'error="insufficient_scope"' in challenge and "tools:admin" in challenge.split('scope="')[1]
        assert result_of(call(proc.url, session, reader, "add", a=1, b=1)) == 2  # what it may call, it calls
    # Stepped up (a token with the scope, the same subject): the same session may call it now.
    stepped = fleet.provider.token("reader", scope="tools:read")  # `reader` may never get tools:admin ...
    assert call(fleet.url, session, stepped, "session_increment").status_code == 403
    admin = fleet.provider.token("machine")  # ... and `machine` is another subject: its own session
    assert result_of(call(fleet.url, open_session(fleet.url, admin), admin, "session_increment")) == 1


# Hostile tokens: 401, never a 5xx


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unsigned(header: dict[str, Any], claims: dict[str, Any], signature: bytes = b"") -> str:
    return f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}.{_b64(signature)}"


def crafted_tokens(fleet: Fleet) -> dict[str, str]:
    """Tokens an attacker would try: each must be refused with 401."""
    import hmac
    from hashlib import sha256

    claims = {
        "iss": fleet.provider.issuer,
        "sub": "machine",
        "aud": fleet.url,
        "exp": int(time.time()) + 300,
        "scope": "tools:read tools:admin",
    }
    public_pem = RSAKey.import_key(fleet.provider.keys[0]).as_pem(private=False)
    signing_input = f"{_b64(json.dumps({'alg': 'HS256', 'typ': 'JWT'}).encode())}.{_b64(json.dumps(claims).encode())}"
    hs256 = hmac.new(public_pem, signing_input.encode(), sha256).digest()
    genuine = fleet.provider.token()
    head, payload, signature = genuine.split(".")
    forged_claims = json.loads(base64.urlsafe_b64decode(payload + "=="))
    forged_claims["sub"] = "someone-else"
    return {
        "alg none": _unsigned({"alg": "none", "typ": "JWT"}, claims),
        "alg none, no dot": _unsigned({"alg": "none"}, claims)[:-1],
        "HS256 with the public key as secret": f"{signing_input}.{_b64(hs256)}",
        "bad base64": "e30.@@@.###",
        "not JSON": f"{_b64(b'not json')}.{_b64(b'{}')}.{_b64(b'x')}",
        "huge": "a" * 9000 + "." + "b" * 9000 + ".c",
        "nested JWT": _unsigned({"alg": "RS256", "cty": "JWT", "kid": "key-1"}, {"jwt": genuine}),
        "encrypted (JWE)": "eyJhbGciOiJSU0EtT0FFUCIsImVuYyI6IkEyNTZHQ00ifQ.a.b.c.d",
        "payload swapped": f"{head}.{_b64(json.dumps(forged_claims).encode())}.{signature}",
        "signature cut": f"{head}.{payload}.",
        "unknown kid": _unsigned({"alg": "RS256", "kid": "no-such-key"}, claims, b"sig"),
        "opaque": "just-some-opaque-string",
    }


def test_crafted_tokens_are_401(fleet: Fleet) -> None:
    for name, token in crafted_tokens(fleet).items():
        for proc in fleet.replicas:
            response = post_with(proc.url, token)
            assert response.status_code == 401, (name, response.status_code, response.text[:300])
            assert response.json()["error"]["message"].startswith("Unauthorized"), name


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    token=st.one_of(
        st.text(alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1, max_size=300),
        st.lists(st.binary(max_size=120), min_size=3, max_size=3).map(lambda p: ".".join(_b64(x) for x in p)),
        st.dictionaries(st.sampled_from(["alg", "kid", "typ", "cty", "crit", "jku", "x5u"]), st.text(max_size=20)).map(
            lambda h: _unsigned(h, {"sub": "x"}, b"sig")
        ),
    )
)
def test_fuzzed_tokens_are_401(fleet: Fleet, token: str) -> None:
    response = post_with(fleet.replicas[0].url, token)
    assert response.status_code == 401, (token[:100], response.status_code, response.text[:300])


# Keys: rotation, and an issuer that is down or slow


def test_a_rotated_in_key_is_accepted_and_a_rotated_out_one_refused(tmp_path: Path, redis_server: RedisServer) -> None:
    with fleet_of(tmp_path, redis_server) as f:
        old = f.provider.token()
        session = open_session(f.url, old)
        for proc in f.replicas:
            assert result_of(call(proc.url, session, old, "session_increment")) >= 1
        f.provider.rotate([new_key("key-2")])  # key-1 is no longer published
        new = f.provider.token()
        count = len(f.replicas)
        for proc in f.replicas:  # each replica learns key-2 from the token that names it, without a restart
            count += 1
            assert result_of(call(proc.url, session, new, "session_increment")) == count
        for proc in f.replicas:  # and has dropped key-1 with it
            response = call(proc.url, session, old, "session_increment")
            assert response.status_code == 401, response.text
            assert "key" in response.json()["error"]["message"]


def test_a_known_key_serves_while_the_issuer_is_down(tmp_path: Path, redis_server: RedisServer) -> None:
    with fleet_of(tmp_path, redis_server, count=1) as f:
        token = f.provider.token()
        session = open_session(f.url, token)
        f.provider.stop()
        started = time.monotonic()
        for n in range(2, 12):
            assert result_of(call(f.replicas[0].url, session, token, "session_increment", n)) == n - 1
        assert time.monotonic() - started < 5  # no request waited for the issuer


def test_no_known_key_and_the_issuer_down_is_a_bounded_503(tmp_path: Path, redis_server: RedisServer) -> None:
    with running_provider(tmp_path / "provider", ["http://mcp.test/mcp"]) as provider:
        token = provider.token()
    # The provider is gone before any replica has read its keys; another "issuer" accepts and never answers.
    silent = socket.create_server(("127.0.0.1", 0))
    try:
        env = redis_env(redis_server, **oauth_env(provider, "http://mcp.test/mcp", MCP_OAUTH_TIMEOUT_SECONDS="1"))
        for issuer_env in ({}, {"MCP_OAUTH_JWKS_URL": f"http://127.0.0.1:{silent.getsockname()[1]}/jwks"}):
            proc = spawn(tmp_path, {**env, **issuer_env})
            try:
                wait_healthy(proc)
                assert httpx2.get(f"{proc.base}/readyz").status_code == 200  # ready: other tokens may still do
                started = time.monotonic()
                response = post_with(proc.url, token)
                assert response.status_code == 503, response.text
                assert response.headers["retry-after"]
                assert time.monotonic() - started < 3.5
            finally:
                proc.stop()
    finally:
        silent.close()


# Opaque tokens, introspected


def test_opaque_tokens_are_introspected(tmp_path: Path, redis_server: RedisServer) -> None:
    """A resource whose tokens are opaque: the runtime asks the provider's introspection endpoint (as its own
    client), caches the answer, and refuses what the provider says is not active."""
    opaque = "http://opaque.test/mcp"
    secret = tmp_path / "introspection-secret"
    secret.write_text("introspector-secret\n")
    with running_provider(tmp_path / "provider", ["http://mcp.test/mcp"], opaque=opaque) as provider:
        env = redis_env(
            redis_server,
            **oauth_env(provider, opaque),
            MCP_OAUTH_INTROSPECTION_CLIENT_ID="introspector",
            MCP_OAUTH_INTROSPECTION_CLIENT_SECRET_FILE=str(secret),
        )
        proc = spawn(tmp_path, env)
        try:
            wait_healthy(proc)
            token = provider.token(resource=opaque)
            assert token.count(".") != 2  # opaque, not a JWT
            session = open_session(proc.url, token)
            assert result_of(call(proc.url, session, token, "caller_info"), whole=True)["subject"] == "machine"
            assert result_of(call(proc.url, session, token, "add", a=2, b=3)) == 5
            made_up = post_with(proc.url, "not-a-token-the-provider-ever-issued")
            assert made_up.status_code == 401 and "not active" in made_up.json()["error"]["message"]
            reader = provider.token("reader", resource=opaque, scope="tools:read")
            assert result_of(call(proc.url, open_session(proc.url, reader), reader, "add", a=1, b=1)) == 2
            other = provider.token("other-machine", resource=opaque)
            assert call(proc.url, session, other, "add", a=1, b=1).status_code == 404  # another subject
        finally:
            proc.stop()
        assert "Traceback" not in proc.log(), proc.log()[-3000:]
