"""Several mcp-runtime replicas on one real redis-server behave as one server for handshake-era clients.

The official client reaches the replicas through a balancer with no affinity: every HTTP request goes to the
next replica.
"""

from __future__ import annotations

import signal
import time
from pathlib import Path

import anyio
import httpx2
import pytest

from tests.support.clients import balanced_client
from tests.support.procs import metric, restart
from tests.support.raw import open_get, open_raw_session, read_events, session_headers, set_note
from tests.support.redis_server import RedisServer, redis_env, replicas, start_redis

LIST = {"jsonrpc": "2.0", "id": 9, "method": "tools/list"}


async def test_a_session_opened_on_one_replica_is_served_by_all(tmp_path: Path, redis_server: RedisServer) -> None:
    with replicas(tmp_path, redis_env(redis_server)) as procs:
        client, balancer = balanced_client(procs)
        async with client:
            seen = set()
            handle = (await client.call_tool("counter_create", {})).structured_content["result"]  # type: ignore[index]
            for expected in range(1, 10):  # two requests a round on three replicas: every pairing occurs
                who = (await client.call_tool("whoami", {})).structured_content
                assert who is not None
                seen.add(who["replica"])
                count = await client.call_tool("session_increment", {})
                assert count.structured_content == {"result": expected}, count
            for expected in range(1, 5):
                counter = await client.call_tool("counter_increment", {"handle": handle})
                assert counter.structured_content == {"result": expected}
            assert seen == {f"replica-{p.port}" for p in procs}
        assert balancer.statuses[404] == 0
        assert sum(metric(p.base, "mcp_runtime_sessions_restored_total") for p in procs) >= 2


async def test_kill_9_of_a_replica_loses_no_session(tmp_path: Path, redis_server: RedisServer) -> None:
    with replicas(tmp_path, redis_env(redis_server)) as procs:
        clients = [balanced_client(procs) for _ in range(4)]
        async with clients[0][0] as c0, clients[1][0] as c1, clients[2][0] as c2, clients[3][0] as c3:
            sessions = [c0, c1, c2, c3]
            expected = [0] * len(sessions)
            for round_ in range(12):
                if round_ == 4:
                    procs[1].process.send_signal(signal.SIGKILL)
                    procs[1].process.wait(5)
                if round_ == 8:
                    procs[1] = restart(procs[1])
                for index, client in enumerate(sessions):
                    expected[index] += 1
                    result = await client.call_tool("session_increment", {})
                    assert result.structured_content == {"result": expected[index]}
        statuses = sum((b.statuses for _, b in clients), start=type(clients[0][1].statuses)())
        assert statuses[404] == 0, statuses
        assert all(b.by_port[procs[1].port] > 0 for _, b in clients)  # the restarted replica served again


def test_delete_on_one_replica_ends_the_session_everywhere(tmp_path: Path, redis_server: RedisServer) -> None:
    with replicas(tmp_path, redis_env(redis_server)) as procs:
        session = open_raw_session(procs[0].url).headers["mcp-session-id"]
        for proc in procs:
            assert httpx2.post(proc.url, json=LIST, headers=session_headers(session)).status_code == 200
        assert httpx2.delete(procs[1].url, headers=session_headers(session)).status_code == 200
        for proc in procs:
            gone = httpx2.post(proc.url, json=LIST, headers=session_headers(session))
            assert gone.status_code == 404 and gone.json()["error"]["message"] == "Session not found"


def test_another_principal_gets_404_on_every_replica(tmp_path: Path, redis_server: RedisServer) -> None:
    tokens = tmp_path / "tokens"
    tokens.write_text("alice\nbob\n")
    with replicas(tmp_path, redis_env(redis_server, MCP_AUTH_TOKEN_FILE=str(tokens))) as procs:
        alice, bob = {"Authorization": "Bearer alice"}, {"Authorization": "Bearer bob"}
        session = open_raw_session(procs[0].url, alice).headers["mcp-session-id"]
        for proc in procs:
            assert httpx2.post(proc.url, json=LIST, headers=session_headers(session, bob)).status_code == 404
            assert httpx2.delete(proc.url, headers=session_headers(session, bob)).status_code == 404
            assert httpx2.post(proc.url, json=LIST, headers=session_headers(session, alice)).status_code == 200


def test_caps_hold_across_replicas(tmp_path: Path, redis_server: RedisServer) -> None:
    env = redis_env(redis_server, MCP_MAX_SESSIONS="3")
    with replicas(tmp_path, env) as procs:
        assert [open_raw_session(p.url).status_code for p in procs] == [200, 200, 200]
        for proc in procs:
            refused = open_raw_session(proc.url)
            assert refused.status_code == 503 and "retry-after" in refused.headers


def test_expiry_is_counted_once_and_seen_everywhere(tmp_path: Path, redis_server: RedisServer) -> None:
    env = redis_env(redis_server, MCP_SESSION_TTL_SECONDS="1", MCP_SWEEP_INTERVAL_SECONDS="0.3")
    with replicas(tmp_path, env, count=2) as procs:
        session = open_raw_session(procs[0].url).headers["mcp-session-id"]
        time.sleep(2.5)
        assert sum(metric(p.base, "mcp_runtime_sessions_expired_total") for p in procs) == 1
        for proc in procs:
            assert httpx2.post(proc.url, json=LIST, headers=session_headers(session)).status_code == 404
        assert not [k for k in redis_server.client().keys("*") if session in k]


def test_get_stream_notifications_cross_replicas_and_resume_elsewhere(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    with replicas(tmp_path, redis_env(redis_server)) as procs:
        session = open_raw_session(procs[0].url).headers["mcp-session-id"]
        stream = open_get(procs[0].port, session)
        set_note(procs[1].url, session, "first")  # the tool runs on replica 1, the GET stream is on replica 0
        [(first_id, first)] = read_events(stream, 1)
        assert first_id and "notifications/resources/updated" in first
        stream.close()
        time.sleep(0.3)
        set_note(procs[1].url, session, "second")  # nobody listens now
        set_note(procs[2].url, session, "third")
        resumed = open_get(procs[2].port, session, last_event_id=first_id)
        events = read_events(resumed, 2)
        assert len(events) == 2 and all("notifications/resources/updated" in data for _, data in events)
        assert events[0][0] > first_id and events[1][0] > events[0][0]
        resumed.close()


async def test_ask_answered_through_another_replica(tmp_path: Path, redis_server: RedisServer) -> None:
    with replicas(tmp_path, redis_env(redis_server), count=2) as procs:
        client, _ = balanced_client(procs)
        async with client:
            for n in range(4):  # the answer POST always lands on the replica that did not ask
                with anyio.fail_after(15):
                    result = await client.call_tool("ask", {"question": f"q{n}"})
                assert result.structured_content == {"result": f"answer to q{n}"}, result
        assert sum(metric(p.base, "mcp_runtime_answers_forwarded_total") for p in procs) >= 1


async def test_redis_outage_is_503_then_recovers(tmp_path: Path) -> None:
    server = start_redis(tmp_path / "redis", extra=["--appendonly", "yes", "--appendfsync", "always"])
    try:
        with replicas(tmp_path, redis_env(server), count=2) as procs:
            session = open_raw_session(procs[0].url).headers["mcp-session-id"]
            assert httpx2.post(procs[1].url, json=LIST, headers=session_headers(session)).status_code == 200
            server.stop()
            for proc in procs:
                down = httpx2.post(proc.url, json=LIST, headers=session_headers(session), timeout=10)
                assert down.status_code == 503 and "retry-after" in down.headers
                assert down.json()["error"]["message"].startswith("Session store unavailable")
                assert open_raw_session(proc.url).status_code == 503
                assert httpx2.get(f"{proc.base}/readyz").status_code == 503
                assert proc.alive()
            server.start()
            deadline = time.monotonic() + 15
            while any(httpx2.get(f"{p.base}/readyz").status_code != 200 for p in procs):
                assert time.monotonic() < deadline, "replicas did not become ready again"
                await anyio.sleep(0.2)
            for proc in procs:
                assert httpx2.post(proc.url, json=LIST, headers=session_headers(session)).status_code == 200
            assert "Traceback" not in procs[0].log()
    finally:
        server.stop()


@pytest.mark.parametrize("how", ["url", "file", "tls"])
def test_redis_auth_and_tls(tmp_path: Path, how: str) -> None:
    server = start_redis(tmp_path / "redis", password="s3cret", tls=how == "tls")
    try:
        env = redis_env(server)
        if how == "file":
            secret = tmp_path / "password"
            secret.write_text("s3cret\n")
            env |= {"MCP_REDIS_URL": server.url.replace(":s3cret@", ""), "MCP_REDIS_PASSWORD_FILE": str(secret)}
        with replicas(tmp_path, env, count=1) as procs:
            session = open_raw_session(procs[0].url).headers["mcp-session-id"]
            assert httpx2.post(procs[0].url, json=LIST, headers=session_headers(session)).status_code == 200
            assert server.client().exists(f"mcp:s:{session}")
    finally:
        server.stop()


def test_key_prefix_separates_servers(tmp_path: Path, redis_server: RedisServer) -> None:
    with replicas(tmp_path, redis_env(redis_server, MCP_REDIS_KEY_PREFIX="alpha:"), count=1) as alpha:
        session = open_raw_session(alpha[0].url).headers["mcp-session-id"]
        keys: list[str] = redis_server.client().keys("*")  # type: ignore[assignment]
        assert keys and all(k.startswith("alpha:") for k in keys)
        with replicas(tmp_path, redis_env(redis_server, MCP_REDIS_KEY_PREFIX="beta:"), count=1) as beta:
            assert httpx2.post(beta[0].url, json=LIST, headers=session_headers(session)).status_code == 404


def test_every_session_key_expires(tmp_path: Path, redis_server: RedisServer) -> None:
    with replicas(tmp_path, redis_env(redis_server), count=1) as procs:
        session = open_raw_session(procs[0].url).headers["mcp-session-id"]
        call = {
            "jsonrpc": "2.0",
            "id": 2,
            "method": "tools/call",
            "params": {"name": "session_increment", "arguments": {}},
        }
        assert httpx2.post(procs[0].url, json=call, headers=session_headers(session)).status_code == 200
        set_note(procs[0].url, session, "x")
        client = redis_server.client()
        for key in client.keys(f"*{session}*"):
            assert client.pttl(key) > 0, key


@pytest.mark.parametrize("interval", ["1", "0"])
def test_a_session_lost_from_the_store_without_notice_is_404_within_the_touch_interval(
    tmp_path: Path, redis_server: RedisServer, interval: str
) -> None:
    """Its record removed behind the replicas' backs (no DELETE, no event): a replica holding it live answers 404
    once its touch interval has passed (at once with 0), never later; and the other keeps nothing either."""
    env = redis_env(redis_server, MCP_TOUCH_INTERVAL_SECONDS=interval)
    with replicas(tmp_path, env, count=2) as procs:
        session = open_raw_session(procs[0].url).headers["mcp-session-id"]
        assert httpx2.post(procs[0].url, json=LIST, headers=session_headers(session)).status_code == 200
        redis_server.client().delete(f"mcp:s:{session}")
        removed = time.monotonic()
        statuses = []
        while True:
            status = httpx2.post(procs[0].url, json=LIST, headers=session_headers(session)).status_code
            statuses.append(status)
            if status == 404:
                break
            assert status == 200 and time.monotonic() - removed < float(interval) + 0.5, statuses
        assert interval == "1" or statuses == [404]
        assert httpx2.post(procs[1].url, json=LIST, headers=session_headers(session)).status_code == 404


def test_a_delete_heard_by_every_replica_is_404_at_once_everywhere(tmp_path: Path, redis_server: RedisServer) -> None:
    """Every replica holds the session live (touched just now); a DELETE on one: the next request on each is
    404, many times over, with the default touch interval."""
    with replicas(tmp_path, redis_env(redis_server), count=3) as procs:
        for _ in range(10):
            session = open_raw_session(procs[0].url).headers["mcp-session-id"]
            for proc in procs:
                assert httpx2.post(proc.url, json=LIST, headers=session_headers(session)).status_code == 200
            assert httpx2.delete(procs[1].url, headers=session_headers(session)).status_code == 200
            for proc in procs:
                assert httpx2.post(proc.url, json=LIST, headers=session_headers(session)).status_code == 404
