"""The memory backend's session lifecycle: caps, expiry, unknown ids, DELETE, idle release and rebuild."""

from __future__ import annotations

import time
from pathlib import Path

import anyio
import httpx2

from tests.support.clients import mcp_client
from tests.support.procs import RuntimeProcess, metric, running
from tests.support.raw import open_raw_session, session_headers

CALL_ADD = {"jsonrpc": "2.0", "id": 7, "method": "tools/call", "params": {"name": "add", "arguments": {"a": 1, "b": 2}}}


def call_add(url: str, session_id: str) -> httpx2.Response:
    return httpx2.post(url, json=CALL_ADD, headers=session_headers(session_id), timeout=10)


def test_session_cap_gives_503_with_retry_after(tmp_path: Path) -> None:
    with running(tmp_path, {"MCP_MAX_SESSIONS": "3", "MCP_RETRY_AFTER_SECONDS": "7"}) as rt:
        opened = [open_raw_session(rt.url) for _ in range(3)]
        assert all(r.status_code == 200 for r in opened)
        refused = open_raw_session(rt.url)
        assert refused.status_code == 503
        assert refused.headers["retry-after"] == "7"
        body = refused.json()
        assert body["jsonrpc"] == "2.0" and "Too many open sessions" in body["error"]["message"]
        assert metric(rt.base, "mcp_runtime_sessions_rejected_total", 'reason="server_limit"') == 1
        # Existing sessions are unaffected, and ending one makes room.
        first = opened[0].headers["mcp-session-id"]
        assert call_add(rt.url, first).status_code == 200
        assert httpx2.delete(rt.url, headers=session_headers(first)).status_code == 200
        assert open_raw_session(rt.url).status_code == 200


def test_per_client_cap(tmp_path: Path) -> None:
    tokens = tmp_path / "tokens"
    tokens.write_text("alice-token\nbob-token\n")
    env = {"MCP_MAX_SESSIONS_PER_CLIENT": "2", "MCP_AUTH_TOKEN_FILE": str(tokens)}
    alice = {"Authorization": "Bearer alice-token"}
    bob = {"Authorization": "Bearer bob-token"}
    with running(tmp_path, env) as rt:
        assert open_raw_session(rt.url, alice).status_code == 200
        assert open_raw_session(rt.url, alice).status_code == 200
        refused = open_raw_session(rt.url, alice)
        assert refused.status_code == 503
        assert "this client already holds 2" in refused.json()["error"]["message"]
        assert open_raw_session(rt.url, bob).status_code == 200
        assert metric(rt.base, "mcp_runtime_sessions_rejected_total", 'reason="client_limit"') == 1


def test_per_client_cap_by_address_without_auth(tmp_path: Path) -> None:
    with running(tmp_path, {"MCP_MAX_SESSIONS_PER_CLIENT": "1"}) as rt:
        assert open_raw_session(rt.url).status_code == 200
        assert open_raw_session(rt.url).status_code == 503


def test_idle_sessions_expire_and_free_their_slot(tmp_path: Path) -> None:
    env = {"MCP_SESSION_TTL_SECONDS": "1", "MCP_SWEEP_INTERVAL_SECONDS": "0.2", "MCP_MAX_SESSIONS": "1"}
    with running(tmp_path, env) as rt:
        session = open_raw_session(rt.url).headers["mcp-session-id"]
        assert metric(rt.base, "mcp_runtime_sessions_active") == 1
        time.sleep(2.0)
        assert metric(rt.base, "mcp_runtime_sessions_expired_total") == 1
        assert metric(rt.base, "mcp_runtime_sessions_active") == 0
        gone = call_add(rt.url, session)
        assert gone.status_code == 404
        assert gone.json()["error"]["message"] == "Session not found"
        assert open_raw_session(rt.url).status_code == 200  # the cap's slot was freed


def test_activity_keeps_a_session_alive(tmp_path: Path) -> None:
    env = {"MCP_SESSION_TTL_SECONDS": "1", "MCP_SWEEP_INTERVAL_SECONDS": "0.2"}
    with running(tmp_path, env) as rt:
        session = open_raw_session(rt.url).headers["mcp-session-id"]
        for _ in range(6):
            time.sleep(0.4)
            assert call_add(rt.url, session).status_code == 200
        assert metric(rt.base, "mcp_runtime_sessions_expired_total") == 0


def test_unknown_and_garbage_session_ids_get_404(runtime: RuntimeProcess) -> None:
    for bogus in [b"0" * 32, b"not-a-session", b"x" * 5000, "💥".encode()]:
        headers = {k.encode(): v.encode() for k, v in session_headers("placeholder").items()}
        headers[b"mcp-session-id"] = bogus
        response = httpx2.post(runtime.url, json=CALL_ADD, headers=headers, timeout=10)
        assert response.status_code == 404, bogus
        assert response.json()["error"]["message"] == "Session not found"
    assert httpx2.delete(runtime.url, headers=session_headers("0" * 32)).status_code == 404
    assert runtime.alive()


def test_delete_ends_the_session(runtime: RuntimeProcess) -> None:
    session = open_raw_session(runtime.url).headers["mcp-session-id"]
    assert call_add(runtime.url, session).status_code == 200
    assert httpx2.delete(runtime.url, headers=session_headers(session)).status_code == 200
    assert call_add(runtime.url, session).status_code == 404
    assert httpx2.delete(runtime.url, headers=session_headers(session)).status_code == 404
    assert metric(runtime.base, "mcp_runtime_sessions_deleted_total") == 1
    assert metric(runtime.base, "mcp_runtime_sessions_active") == 0


async def test_client_closing_deletes_its_session(runtime: RuntimeProcess) -> None:
    async with mcp_client(runtime.url, "handshake") as client:
        await client.call_tool("add", {"a": 1, "b": 1})
        assert metric(runtime.base, "mcp_runtime_sessions_active") == 1
    assert metric(runtime.base, "mcp_runtime_sessions_active") == 0


async def test_idle_transport_is_released_and_rebuilt_with_state_intact(tmp_path: Path) -> None:
    env = {"MCP_TRANSPORT_IDLE_SECONDS": "0.3"}
    with running(tmp_path, env) as rt:
        async with mcp_client(rt.url, "handshake") as client:
            assert (await client.call_tool("session_increment", {})).structured_content == {"result": 1}
        # A raw session holds no GET stream, so its transport goes idle and is released.
        session = open_raw_session(rt.url).headers["mcp-session-id"]
        assert call_add(rt.url, session).status_code == 200
        await anyio.sleep(1.0)
        assert metric(rt.base, "mcp_runtime_transports_live") <= 1  # at most the SDK client's, until it closed
        response = call_add(rt.url, session)
        assert response.status_code == 200 and '"result":3' in response.text.replace(" ", "")
        assert metric(rt.base, "mcp_runtime_sessions_restored_total") >= 1


async def test_handshake_session_survives_idle_release_through_the_client(tmp_path: Path) -> None:
    env = {"MCP_TRANSPORT_IDLE_SECONDS": "0.2"}
    with running(tmp_path, env) as rt:
        async with mcp_client(rt.url, "handshake") as client:
            for expected in range(1, 4):
                assert (await client.call_tool("session_increment", {})).structured_content == {"result": expected}
                await anyio.sleep(0.5)
            asked = await client.call_tool("ask", {"question": "still there?"})
            assert asked.structured_content == {"result": "answer to still there?"}
