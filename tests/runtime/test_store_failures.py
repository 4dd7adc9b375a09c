"""The session store failing: full, read-only, restarted, flushed. Every failure is a 503 with Retry-After
and a JSON-RPC error before any response byte, a session is stored whole or not at all, and GET streams end
with their sessions."""

from __future__ import annotations

import socket
import time
from pathlib import Path

import httpx2
import pytest
import redis

from tests.support.procs import running
from tests.support.raw import INIT_BODY, JSON_HEADERS, open_raw_session, session_headers
from tests.support.redis_server import RedisServer, redis_env, replicas, start_redis

LIST = {"jsonrpc": "2.0", "id": 9, "method": "tools/list"}


def assert_503(response: httpx2.Response) -> None:
    assert response.status_code == 503, (response.status_code, response.text)
    assert response.headers.get("retry-after", "").isdigit()
    assert response.json()["error"]["code"] == -32603


def wait_ready(base: str, want: int = 200, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while httpx2.get(f"{base}/readyz").status_code != want:
        assert time.monotonic() < deadline, f"/readyz never answered {want}"
        time.sleep(0.1)


def fill(client: redis.Redis) -> None:
    """Write until Redis refuses with OOM (maxmemory, noeviction)."""
    for n in range(100_000):
        try:
            client.set(f"ballast:{n}", "x" * 10_000)
        except redis.exceptions.OutOfMemoryError:
            # Used memory hovers at the limit: lower the limit below it, so every write is refused.
            client.config_set("maxmemory", "1mb")
            return
    raise AssertionError("redis never filled up")


def test_a_full_redis_refuses_new_sessions_with_503_and_leaves_nothing(tmp_path: Path) -> None:
    server = start_redis(tmp_path / "redis", extra=["--maxmemory", "4mb", "--maxmemory-policy", "noeviction"])
    try:
        with replicas(tmp_path, redis_env(server), count=2) as procs:
            session = open_raw_session(procs[0].url).headers["mcp-session-id"]
            client = server.client()
            fill(client)
            for proc in procs:
                refused = httpx2.post(proc.url, json=INIT_BODY, headers=JSON_HEADERS)
                assert_503(refused)
                assert "OOM" in refused.json()["error"]["message"]
                wait_ready(proc.base, 503)
            # Serving an existing session needs no new memory: it goes on.
            assert httpx2.post(procs[1].url, json=LIST, headers=session_headers(session)).status_code == 200
            assert client.zcard("mcp:sessions") == 1
            assert [k for k in client.scan_iter("mcp:s:*")] == [f"mcp:s:{session}"]
            client.config_set("maxmemory", "0")
            client.flushdb()
            for proc in procs:
                wait_ready(proc.base)
                assert open_raw_session(proc.url).status_code == 200
    finally:
        server.stop()


def test_a_read_only_redis_is_503_and_unready(tmp_path: Path, redis_server: RedisServer) -> None:
    primary = start_redis(tmp_path / "primary")
    try:
        with running(tmp_path, redis_env(redis_server)) as rt:
            wait_ready(rt.base)
            redis_server.client().replicaof("127.0.0.1", primary.port)  # now a read-only replica
            refused = httpx2.post(rt.url, json=INIT_BODY, headers=JSON_HEADERS)
            assert_503(refused)
            assert "READONLY" in refused.json()["error"]["message"]
            wait_ready(rt.base, 503)
            redis_server.client().replicaof("no", "one")
            wait_ready(rt.base)
            assert open_raw_session(rt.url).status_code == 200
            assert "Traceback" not in rt.log()
    finally:
        primary.stop()


def test_right_after_a_redis_restart_no_request_pays_a_503(tmp_path: Path) -> None:
    server = start_redis(tmp_path / "redis", extra=["--appendonly", "yes", "--appendfsync", "always"])
    try:
        with replicas(tmp_path, redis_env(server), count=2) as procs:
            session = open_raw_session(procs[0].url).headers["mcp-session-id"]
            for proc in procs:  # every replica's pool holds connections
                for _ in range(3):
                    assert httpx2.post(proc.url, json=LIST, headers=session_headers(session)).status_code == 200
            server.stop()
            server.start()
            # The pooled connections are stale now: the first request on each replica must still succeed.
            for proc in procs:
                response = httpx2.post(proc.url, json=LIST, headers=session_headers(session))
                assert response.status_code == 200, response.text
                assert open_raw_session(proc.url).status_code == 200
    finally:
        server.stop()


def test_a_failed_initialize_leaves_no_record(tmp_path: Path, redis_server: RedisServer) -> None:
    with running(tmp_path, redis_env(redis_server, MCP_MAX_SESSIONS="2")) as rt:
        bad = {**INIT_BODY, "params": {"protocolVersion": 12}}
        response = httpx2.post(rt.url, json=bad, headers=JSON_HEADERS)
        assert response.status_code in (200, 400)
        client = redis_server.client()
        assert client.zcard("mcp:sessions") == 0 and not list(client.scan_iter("mcp:s:*"))
        assert open_raw_session(rt.url).status_code == 200
        assert open_raw_session(rt.url).status_code == 200
        assert_503(open_raw_session(rt.url))  # the cap, and only complete sessions count against it
        assert client.zcard("mcp:sessions") == 2


def read_until_closed(sock: socket.socket, timeout: float) -> bytes:
    sock.settimeout(timeout)
    data = b""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
        if data.endswith(b"0\r\n\r\n"):
            return data
    raise AssertionError(f"the GET stream did not end: {data[-300:]!r}")


def open_stream(port: int, session: str, last_event_id: str | None = None) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    extra = f"Last-Event-ID: {last_event_id}\r\n" if last_event_id is not None else ""
    sock.sendall(
        f"GET /mcp HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAccept: text/event-stream\r\n"
        f"Mcp-Session-Id: {session}\r\nMcp-Protocol-Version: 2025-11-25\r\n{extra}\r\n".encode()
    )
    return sock


@pytest.mark.parametrize("backend", ["memory", "redis"])
def test_a_get_stream_ends_when_its_session_expires(tmp_path: Path, backend: str) -> None:
    env = {"MCP_SESSION_TTL_SECONDS": "1", "MCP_SWEEP_INTERVAL_SECONDS": "0.3", "MCP_STREAM_CHECK_SECONDS": "0.3"}
    server = start_redis(tmp_path / "redis") if backend == "redis" else None
    try:
        with running(tmp_path, redis_env(server, **env) if server else env) as rt:
            session = open_raw_session(rt.url).headers["mcp-session-id"]
            sock = open_stream(rt.port, session)
            assert sock.recv(4096).startswith(b"HTTP/1.1 200")
            read_until_closed(sock, 5)
            sock.close()
            assert httpx2.post(rt.url, json=LIST, headers=session_headers(session)).status_code == 404
    finally:
        if server:
            server.stop()


def test_a_get_stream_ends_when_its_record_is_lost_from_redis(tmp_path: Path, redis_server: RedisServer) -> None:
    with replicas(tmp_path, redis_env(redis_server, MCP_STREAM_CHECK_SECONDS="0.3"), count=2) as procs:
        session = open_raw_session(procs[0].url).headers["mcp-session-id"]
        sock = open_stream(procs[1].port, session)
        assert sock.recv(4096).startswith(b"HTTP/1.1 200")
        redis_server.client().flushall()
        read_until_closed(sock, 5)
        sock.close()


@pytest.mark.parametrize("value", ["garbage", "1-2-3", "-", "abc-1", "9" * 30, "1-x"])
def test_a_malformed_last_event_id_is_400(tmp_path: Path, redis_server: RedisServer, value: str) -> None:
    with running(tmp_path, redis_env(redis_server)) as rt:
        session = open_raw_session(rt.url).headers["mcp-session-id"]
        headers = session_headers(session, {"Accept": "text/event-stream", "Last-Event-ID": value})
        response = httpx2.get(rt.url, headers=headers)
        assert response.status_code == 400 and "Last-Event-ID" in response.json()["error"]["message"]
        sock = open_stream(rt.port, session, "0-0")  # a well-formed one is served
        assert sock.recv(4096).startswith(b"HTTP/1.1 200")
        sock.close()


def test_expired_memory_sessions_hold_no_slot_before_the_sweep(tmp_path: Path) -> None:
    env = {"MCP_MAX_SESSIONS": "3", "MCP_SESSION_TTL_SECONDS": "1", "MCP_SWEEP_INTERVAL_SECONDS": "600"}
    with running(tmp_path, env) as rt:
        for _ in range(3):
            assert open_raw_session(rt.url).status_code == 200
        assert_503(open_raw_session(rt.url))
        time.sleep(1.3)
        for _ in range(3):
            assert open_raw_session(rt.url).status_code == 200
