"""Every SSE stream resumable with Last-Event-ID on any replica: a tool call's own POST stream cut mid-call,
drained by SIGTERM, or lost with its replica; the GET stream's notifications sent while the client was away;
ids of other sessions and ids past the log's bounds.

Real runtimes (memory backend: one process; redis: replicas on one real Redis), driven over raw sockets so
that a connection can be cut at an exact point, and every event id and message checked.
"""

from __future__ import annotations

import json
import signal
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2
import pytest

from tests.support.procs import RuntimeProcess, metric, running, spawn, wait_healthy
from tests.support.raw import (
    open_get,
    open_post,
    open_raw_session,
    parse_events,
    read_events,
    read_until_closed,
    results_in,
    session_headers,
    set_note,
)
from tests.support.redis_server import RedisServer, redis_env, replicas

CALL_ID = 42


def slow_call(seconds: float, request_id: int | str = CALL_ID) -> dict[str, Any]:
    return {
        "jsonrpc": "2.0",
        "id": request_id,
        "method": "tools/call",
        "params": {"name": "slow", "arguments": {"seconds": seconds}, "_meta": {"progressToken": "p"}},
    }


def call_running(proc: RuntimeProcess, seconds: float, events: int) -> tuple[str, socket.socket, list[tuple[str, str]]]:
    """A new session on `proc` with a `slow` call of `seconds` running: its id, the call's open stream, and the
    stream's first `events` events (the priming event, then progress)."""
    session = open_raw_session(proc.url).headers["mcp-session-id"]
    post = open_post(proc.port, session, slow_call(seconds))
    return session, post, read_events(post, events, timeout=10)


def progress_of(data: str) -> int | None:
    message = json.loads(data) if data else {}
    return int(message["params"]["progress"]) if message.get("method") == "notifications/progress" else None


def check_resumed_call(before: list[tuple[str, str]], after: list[tuple[str, str]], seconds: float) -> None:
    """What the client saw before the cut and on the resumed stream, together: every progress step once and in
    order, then the result exactly once, every event with an id."""
    assert before and before[0][1] == "" and before[0][0].startswith("p"), before[:2]  # the priming event first
    seen = [p for _, data in before + after if (p := progress_of(data)) is not None]
    assert seen == list(range(1, len(seen) + 1)), seen  # nothing lost, nothing twice
    assert len(seen) == int(seconds * 10)
    [result] = results_in(before + after, CALL_ID)
    assert result["result"]["structuredContent"]["result"] == f"waited {seconds:g}s", result
    assert all(event_id for event_id, _ in after), after


@pytest.fixture(params=["memory", "redis"])
def two_replicas(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[list[RuntimeProcess]]:
    """Two replicas on one Redis, or the memory backend's one process (twice in the list)."""
    if request.param == "memory":
        with running(tmp_path, {"MCP_STREAM_CHECK_SECONDS": "1"}) as proc:
            yield [proc, proc]
    else:
        redis_server: RedisServer = request.getfixturevalue("redis_server")
        with replicas(tmp_path, redis_env(redis_server, MCP_STREAM_CHECK_SECONDS="1"), count=2) as procs:
            yield procs


def test_a_call_whose_stream_is_cut_is_resumed_on_another_replica(two_replicas: list[RuntimeProcess]) -> None:
    a, b = two_replicas
    session, post, before = call_running(a, 10, 20)  # the priming event, then about two seconds of progress
    post.close()  # the connection is cut at 2 s; the call goes on
    resumed = open_get(b.port, session, last_event_id=before[-1][0])
    after, raw = read_until_closed(resumed, timeout=30)  # the stream ends with the result
    check_resumed_call(before, after, 10)
    assert b"retry: 1000" in raw  # the resumed stream's own priming event: it can be resumed again
    # Resumed again from its answer: nothing follows it.
    again = open_get(b.port, session, last_event_id=after[-1][0])
    assert read_until_closed(again, timeout=10)[0] == []
    # The session is whole: its next call is answered on the POST stream as usual.
    response = httpx2.post(b.url, json=slow_call(0.1, 43), headers=session_headers(session), timeout=10)
    assert response.status_code == 200 and results_in(parse_events(response.content), 43)
    assert metric(a.base, "mcp_runtime_streams_detached_total") == 1


def test_the_priming_event_carries_the_retry_interval(two_replicas: list[RuntimeProcess]) -> None:
    a, _ = two_replicas
    session = open_raw_session(a.url).headers["mcp-session-id"]
    post = open_post(a.port, session, slow_call(0.1))
    events, raw = read_until_closed(post)
    first = raw.split(b"\r\n\r\n")[0]
    assert b"id: p" in first and b"retry: 1000" in first and b"data: " in first, raw[:300]
    assert len(results_in(events, CALL_ID)) == 1


def test_a_silent_stream_is_closed_and_resumed(tmp_path: Path, redis_server: RedisServer) -> None:
    env = redis_env(redis_server, MCP_STREAM_IDLE_CLOSE_SECONDS="1", MCP_SSE_RETRY_MS="200")
    with replicas(tmp_path, env, count=2) as (a, b):
        session = open_raw_session(a.url).headers["mcp-session-id"]
        call = slow_call(3)
        del call["params"]["_meta"]  # no progress: the stream is silent
        post = open_post(a.port, session, call)
        started = time.monotonic()
        before, raw = read_until_closed(post, timeout=10)  # closed by the server after a second of silence
        assert time.monotonic() - started < 2.5 and b"retry: 200" in raw
        assert len(before) == 1 and before[0][1] == "" and results_in(before, CALL_ID) == []
        after, _ = read_until_closed(open_get(b.port, session, last_event_id=before[0][0]))
        [result] = results_in(after, CALL_ID)
        assert result["result"]["structuredContent"]["result"] == "waited 3s"


def test_sigterm_sends_the_stream_elsewhere_and_the_call_finishes(tmp_path: Path, redis_server: RedisServer) -> None:
    env = redis_env(redis_server, MCP_SHUTDOWN_GRACE_SECONDS="20")
    with replicas(tmp_path, env, count=2) as (a, b):
        session, post, first = call_running(a, 6, 10)
        a.signal(signal.SIGTERM)
        rest, _ = read_until_closed(post, timeout=10)  # the draining replica closes the stream at once
        # It asks clients to close their connections, so their next request goes to another replica.
        assert httpx2.get(f"{a.base}/healthz").headers["connection"] == "close"
        before = first + rest
        assert results_in(before, CALL_ID) == []
        after, _ = read_until_closed(open_get(b.port, session, last_event_id=before[-1][0]), timeout=30)
        check_resumed_call(before, after, 6)
        assert a.process.wait(20) == 0  # it exited once the call was done
        assert "Traceback" not in a.log(), a.log()[-3000:]


def test_sigkill_of_the_runner_ends_the_resumed_stream_with_an_error(tmp_path: Path, redis_server: RedisServer) -> None:
    env = redis_env(redis_server, MCP_STREAM_CHECK_SECONDS="1")
    with replicas(tmp_path, env, count=2) as (a, b):
        session, _post, before = call_running(a, 30, 5)  # (the POST stays open)
        resumed = open_get(b.port, session, last_event_id=before[-1][0])
        read_events(resumed, 3, timeout=10)  # live progress from replica a, through Redis
        a.process.kill()
        a.process.wait(5)
        started = time.monotonic()
        after, _ = read_until_closed(resumed, timeout=30)
        [error] = results_in(after, CALL_ID)
        assert "is gone, and its answer was not kept" in error["error"]["message"], error
        assert time.monotonic() - started < 15
        assert metric(b.base, "mcp_runtime_streams_resumed_total", 'outcome="runner_lost"') == 1


def test_notifications_sent_while_away_are_replayed(two_replicas: list[RuntimeProcess]) -> None:
    a, b = two_replicas
    session = open_raw_session(a.url).headers["mcp-session-id"]
    stream = open_get(a.port, session)
    set_note(b.url, session, "first")
    [(first_id, _)] = read_events(stream, 1)
    stream.close()
    for text in ("second", "third"):
        set_note(b.url, session, text)  # nobody listening
    resumed = open_get(b.port, session, last_event_id=first_id)
    events = read_events(resumed, 2)
    assert all(event_id and "notifications/resources/updated" in data for event_id, data in events), events
    assert first_id not in {event_id for event_id, _ in events}
    resumed.close()


def test_a_last_event_id_of_another_session_is_404(two_replicas: list[RuntimeProcess]) -> None:
    a, b = two_replicas
    mine = open_raw_session(a.url).headers["mcp-session-id"]
    other = open_raw_session(a.url).headers["mcp-session-id"]
    stream = open_get(a.port, other)
    set_note(a.url, other, "theirs")
    [(their_id, _)] = read_events(stream, 1)
    stream.close()
    post = open_post(a.port, other, slow_call(0.1))
    their_priming = read_until_closed(post)[0][0][0]
    for event_id in (their_id, their_priming):
        response = httpx2.get(
            b.url, headers={**session_headers(mine), "Accept": "text/event-stream", "Last-Event-ID": event_id}
        )
        assert response.status_code == 404, response.text
        assert response.json()["error"]["message"].startswith("Not Found")
    for malformed in ("abc", "1-2.zz", "p1.x.deadbeef", "1-2.abcdef01 id: 3"):
        response = httpx2.get(
            b.url, headers={**session_headers(mine), "Accept": "text/event-stream", "Last-Event-ID": malformed}
        )
        assert response.status_code in (400, 404), (malformed, response.status_code)


def test_a_last_event_id_of_another_principal_is_404(tmp_path: Path, redis_server: RedisServer) -> None:
    tokens = tmp_path / "tokens"
    tokens.write_text("alice-secret\nbob-secret\n")
    env = redis_env(redis_server, MCP_AUTH_TOKEN_FILE=str(tokens))
    alice, bob = {"Authorization": "Bearer alice-secret"}, {"Authorization": "Bearer bob-secret"}
    with replicas(tmp_path, env, count=2) as (a, b):
        session = open_raw_session(a.url, alice).headers["mcp-session-id"]
        answer = httpx2.post(a.url, json=slow_call(0.1), headers=session_headers(session, alice), timeout=10)
        [(priming, _), *_] = parse_events(answer.content)
        headers = {**session_headers(session, bob), "Accept": "text/event-stream", "Last-Event-ID": priming}
        assert httpx2.get(b.url, headers=headers).status_code == 404
        headers = {**session_headers(session, alice), "Accept": "text/event-stream", "Last-Event-ID": priming}
        with httpx2.stream("GET", b.url, headers=headers, timeout=10) as replayed:
            assert replayed.status_code == 200
            assert len(results_in(parse_events(replayed.read()), CALL_ID)) == 1


def test_an_id_past_the_kept_events_restarts_the_stream(tmp_path: Path, redis_server: RedisServer) -> None:
    env = redis_env(redis_server, MCP_EVENT_LOG_LENGTH="3")
    with replicas(tmp_path, env, count=1) as (a,):
        session = open_raw_session(a.url).headers["mcp-session-id"]
        stream = open_get(a.port, session)
        set_note(a.url, session, "first")
        [(first_id, _)] = read_events(stream, 1)
        stream.close()
        for n in range(300):  # trimmed past the first one (MAXLEN ~ trims whole nodes of 100)
            set_note(a.url, session, f"note {n}")
        restarted = open_get(a.port, session, last_event_id=first_id)  # 200: a fresh stream, nothing replayed
        set_note(a.url, session, "live")
        [(live_id, data)] = read_events(restarted, 1)
        assert live_id and "notifications/resources/updated" in data
        restarted.close()
        assert metric(a.base, "mcp_runtime_streams_resumed_total", 'outcome="restarted"') == 1
        assert a.alive() and "Traceback" not in a.log()


def test_a_restarted_replica_serves_a_resume(tmp_path: Path, redis_server: RedisServer) -> None:
    """The replica that ran the call is replaced (same port) after the call ended: the answer is in Redis."""
    with replicas(tmp_path, redis_env(redis_server), count=1) as (a,):
        session, post, before = call_running(a, 1, 3)
        post.close()
        time.sleep(1.5)  # the call ends while nobody listens
        a.stop()
        again = spawn(a.log_path.parent, a.env)
        try:
            wait_healthy(again)
            after, _ = read_until_closed(open_get(again.port, session, last_event_id=before[-1][0]))
            check_resumed_call(before, after, 1)
        finally:
            again.stop()


def test_an_answer_live_delivery_missed_still_ends_the_resumed_stream(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    """The resumed stream's replica has its pub/sub connections killed again and again across the answer (what
    is published while one is down is gone: pub/sub keeps nothing); the stream still ends with the answer, once
    (from the log if live delivery missed it: test_event_log pins that path)."""
    env = redis_env(redis_server, MCP_STREAM_CHECK_SECONDS="1")
    with replicas(tmp_path, env, count=2) as (a, b):
        call = slow_call(3)
        del call["params"]["_meta"]  # no progress: the answer is the only event
        session = open_raw_session(a.url).headers["mcp-session-id"]
        post = open_post(a.port, session, call)
        [(priming, _)] = read_events(post, 1)
        post.close()
        resumed = open_get(b.port, session, last_event_id=priming)
        admin = redis_server.client()
        deadline = time.monotonic() + 6
        while time.monotonic() < deadline:  # every pub/sub connection, again and again, across the answer
            admin.client_kill_filter(_type="pubsub")
            time.sleep(0.05)
        after, _ = read_until_closed(resumed, timeout=15)
        [result] = results_in(after, CALL_ID)
        assert result["result"]["structuredContent"]["result"] == "waited 3s"
        assert a.alive() and b.alive()


def test_an_answer_the_store_refused_is_kept_once_it_takes_writes(tmp_path: Path, redis_server: RedisServer) -> None:
    """Redis refuses writes when the call answers (and its stream was cut): the answer is kept when writes come
    back, and the client's resumed stream gets it."""
    env = redis_env(redis_server, MCP_STREAM_CHECK_SECONDS="1")
    with replicas(tmp_path, env, count=2) as (a, b):
        session, post, before = call_running(a, 3, 5)
        post.close()
        resumed = open_get(b.port, session, last_event_id=before[-1][0])
        admin = redis_server.client()
        time.sleep(2)
        admin.config_set("min-replicas-to-write", 1)  # no replica: every write is refused (NOREPLICAS)
        try:
            time.sleep(3)  # the call answers meanwhile
        finally:
            admin.config_set("min-replicas-to-write", 0)
        after, _ = read_until_closed(resumed, timeout=15)
        [result] = results_in(before + after, CALL_ID)
        assert result["result"]["structuredContent"]["result"] == "waited 3s"
        assert "an answer was kept after the store came back" in a.log()
