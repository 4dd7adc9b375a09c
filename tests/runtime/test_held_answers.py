"""Answers held in the runner's memory (redis backend): an answer that went out on its open POST stream is not
written to the event log, and still reaches a client that resumes the stream, on any replica, after a drain;
a runner killed outright gives a resumed stream a clear error. `HeldAnswers` itself: bounds and bookkeeping,
against a model.

Real runtimes on one real Redis, driven over raw sockets (so that a client can "lose" an answer it was sent)."""

from __future__ import annotations

import json
import random
import signal
import socket
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx2
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mcp_runtime.sessions.held_answers import HeldAnswers
from tests.support.procs import RuntimeProcess, metric, restart, wait_healthy
from tests.support.raw import open_get, open_post, open_raw_session, read_until_closed, results_in, session_headers
from tests.support.redis_server import RedisServer, redis_env, replicas


def streaming_env(redis_server: RedisServer, **extra: str) -> dict[str, str]:
    """Replicas on `redis_server` whose every call opens its SSE stream at once (no JSON window): the answers
    here are the ones that go out on an open stream."""
    return redis_env(redis_server, MCP_JSON_WINDOW_SECONDS="0", **extra)


def add_call(request_id: int, a: int, b: int) -> dict[str, Any]:
    return {
        "jsonrpc": "2.0",
        "id": request_id,
        "method": "tools/call",
        "params": {"name": "add", "arguments": {"a": a, "b": b}},
    }


def answered_whole(proc: RuntimeProcess, session: str, request_id: int, a: int, b: int) -> list[tuple[str, str]]:
    """An `add` call read to its end: the priming event, then the answer."""
    events, _ = read_until_closed(open_post(proc.port, session, add_call(request_id, a, b)), timeout=15)
    return events


def kept_answers(redis_server: RedisServer, session: str) -> int:
    """How many answers the session's event log holds."""
    entries: list[tuple[str, dict[str, str]]] = redis_server.client().xrange(f"mcp:ev:{session}")  # type: ignore[assignment]
    return sum(1 for _, fields in entries if fields.get("f") == "1")


def resumed_answer(proc: RuntimeProcess, session: str, priming: str, request_id: int) -> dict[str, Any]:
    """The answer a GET with the priming event's id gets: exactly one, and nothing else."""
    events, _ = read_until_closed(open_get(proc.port, session, last_event_id=priming), timeout=20)
    [answer] = results_in(events, request_id)
    assert [data for _, data in events if data and json.loads(data).get("id") != request_id] == [], events
    return answer


def value(answer: dict[str, Any]) -> int:
    return int(answer["result"]["structuredContent"]["result"])


def test_an_answer_delivered_on_its_stream_is_held_not_written(tmp_path: Path, redis_server: RedisServer) -> None:
    with replicas(tmp_path, streaming_env(redis_server), count=1) as (a,):
        session = open_raw_session(a.url).headers["mcp-session-id"]
        for request_id in range(1, 6):
            events = answered_whole(a, session, request_id, request_id, 1)
            (priming, empty), (answer_id, data) = events
            assert priming.startswith("p") and empty == ""
            assert answer_id == ""  # no id: a client that resumes from the priming event gets it back
            assert value(json.loads(data)) == request_id + 1
        assert kept_answers(redis_server, session) == 0
        assert metric(a.base, "mcp_runtime_held_answers_kept_total") == 0


@pytest.mark.parametrize("where", ["another replica", "the runner"])
def test_an_answer_the_client_lost_is_written_when_it_resumes(
    tmp_path: Path, redis_server: RedisServer, where: str
) -> None:
    """The answer went out whole, and the client did not get it (its connection dropped as it came): the GET with
    the priming event's id gets it, once, from the runner's memory."""
    with replicas(tmp_path, streaming_env(redis_server), count=2) as (a, b):
        session = open_raw_session(a.url).headers["mcp-session-id"]
        (priming, _), _answer = answered_whole(a, session, 7, 20, 22)
        resumer = b if where == "another replica" else a
        assert value(resumed_answer(resumer, session, priming, 7)) == 42
        assert kept_answers(redis_server, session) == 1
        assert metric(a.base, "mcp_runtime_held_answers_kept_total") == 1
        # Resumed again: the log has it now; still once.
        assert value(resumed_answer(b, session, priming, 7)) == 42


def test_a_draining_runner_writes_what_it_held(tmp_path: Path, redis_server: RedisServer) -> None:
    with replicas(tmp_path, streaming_env(redis_server), count=2) as (a, b):
        session = open_raw_session(a.url).headers["mcp-session-id"]
        primings = [answered_whole(a, session, n, n, n)[0][0] for n in range(1, 4)]
        a.signal(signal.SIGTERM)
        assert a.process.wait(20) == 0
        assert "3 held answers kept" in a.log(), a.log()[-2000:]  # the three calls (initialize is JSON)
        for n, priming in enumerate(primings, start=1):
            assert value(resumed_answer(b, session, priming, n)) == 2 * n


def test_a_runner_killed_with_an_answer_held_gives_a_clear_error(tmp_path: Path, redis_server: RedisServer) -> None:
    env = streaming_env(redis_server, MCP_STREAM_CHECK_SECONDS="1")
    with replicas(tmp_path, env, count=2) as (a, b):
        session = open_raw_session(a.url).headers["mcp-session-id"]
        (priming, _), _answer = answered_whole(a, session, 9, 1, 2)
        a.process.kill()
        a.process.wait(5)
        started = time.monotonic()
        events, _ = read_until_closed(open_get(b.port, session, last_event_id=priming), timeout=30)
        [error] = results_in(events, 9)
        assert "is gone" in error["error"]["message"], error
        assert time.monotonic() - started < 15


def test_concurrent_calls_each_resumed_on_a_random_replica(tmp_path: Path, redis_server: RedisServer) -> None:
    """Calls on several sessions at once, on every replica; each call's stream resumed from its priming event on
    a random replica, some more than once: every resume gives back exactly the answer the call gave."""
    with replicas(tmp_path, streaming_env(redis_server), count=3) as procs:
        sessions = [(open_raw_session(p.url).headers["mcp-session-id"], p) for p in procs for _ in range(2)]
        rng = random.Random(21)
        plan = [(s, p, n, rng.randrange(1000), rng.randrange(1000)) for n in range(1, 9) for s, p in sessions]

        def one(step: tuple[str, RuntimeProcess, int, int, int]) -> list[tuple[int, int]]:
            session, runner, n, x, y = step
            (priming, _), (_, data) = answered_whole(runner, session, n, x, y)
            given_value = value(json.loads(data))
            assert given_value == x + y
            seen = [(given_value, x + y)]
            for _ in range(1 + n % 2):
                resumer = procs[(n * 7 + x) % len(procs)]
                seen.append((value(resumed_answer(resumer, session, priming, n)), x + y))
            return seen

        with ThreadPoolExecutor(8) as pool:
            for seen in pool.map(one, plan):
                assert all(got == want for got, want in seen), seen
        for proc in procs:
            assert "Traceback" not in proc.log(), proc.log()[-3000:]


def test_a_session_deleted_forgets_its_held_answers(tmp_path: Path, redis_server: RedisServer) -> None:
    with replicas(tmp_path, streaming_env(redis_server), count=1) as (a,):
        session = open_raw_session(a.url).headers["mcp-session-id"]
        (priming, _), _answer = answered_whole(a, session, 3, 1, 1)
        assert httpx2.delete(a.url, headers=session_headers(session)).status_code in (200, 204)
        refused = open_get_status(a.port, session, priming)
        assert refused == 404


def open_get_status(port: int, session: str, last_event_id: str) -> int:
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    sock.sendall(
        f"GET /mcp HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAccept: text/event-stream\r\nMcp-Session-Id: {session}\r\n"
        f"Mcp-Protocol-Version: 2025-11-25\r\nLast-Event-ID: {last_event_id}\r\n\r\n".encode()
    )
    head = sock.recv(200)
    sock.close()
    return int(head.split()[1])


# HeldAnswers, pure


def test_held_answers_are_taken_once_and_forgotten_with_their_session() -> None:
    held = HeldAnswers(retention_seconds=300)
    assert held.hold("s1", "t1", "a1") and held.hold("s1", "t2", "a2") and held.hold("s2", "t1", "b1")
    assert len(held) == 3
    assert held.take("s1", "t1") == "a1" and held.take("s1", "t1") is None
    held.forget("s1")
    assert held.take("s1", "t2") is None and len(held) == 1
    assert held.take_all() == [("s2", "t1", "b1")] and len(held) == 0
    held.holding = False
    assert not held.hold("s3", "t", "x") and len(held) == 0


def test_held_answers_older_than_the_retention_are_dropped(monkeypatch: pytest.MonkeyPatch) -> None:
    now = [1000.0]
    monkeypatch.setattr("mcp_runtime.sessions.held_answers.time.monotonic", lambda: now[0])
    held = HeldAnswers(retention_seconds=10)
    held.hold("s", "old", "1")
    now[0] += 11
    held.hold("s", "new", "2")
    assert held.take("s", "old") is None and held.take("s", "new") == "2"


ops = st.lists(
    st.tuples(
        st.sampled_from(["hold", "take", "forget", "take_all"]),
        st.sampled_from(["s1", "s2", "s3"]),
        st.sampled_from(["t1", "t2", "t3", "t4"]),
    ),
    max_size=80,
)


@settings(max_examples=300, deadline=None)
@given(ops=ops, limit=st.integers(min_value=1, max_value=6))
def test_held_answers_match_a_bounded_model(ops: list[tuple[str, str, str]], limit: int) -> None:
    """Against a model: an ordered dict of the most recent `limit` answers held."""
    held = HeldAnswers(retention_seconds=300, limit=limit)
    model: dict[tuple[str, str], str] = {}
    for step, (op, session, token) in enumerate(ops):
        if op == "hold":
            answer = f"{session}/{token}/{step}"
            held.hold(session, token, answer)
            model.pop((session, token), None)
            model[(session, token)] = answer
            while len(model) > limit:
                del model[next(iter(model))]
        elif op == "take":
            assert held.take(session, token) == model.pop((session, token), None)
        elif op == "forget":
            held.forget(session)
            model = {k: v for k, v in model.items() if k[0] != session}
        else:
            assert sorted(held.take_all()) == sorted((s, t, a) for (s, t), a in model.items())
            model.clear()
        assert len(held) == len(model)


def test_a_runner_restarted_under_its_name_says_the_answer_is_gone(tmp_path: Path, redis_server: RedisServer) -> None:
    """A container restarted in its pod keeps the pod's name (and so its heartbeat): the held answer went with
    the old process. The resumed stream ends with an error for the call instead of waiting for it forever."""
    env = streaming_env(redis_server, MCP_STREAM_CHECK_SECONDS="1")
    with replicas(tmp_path, env, count=2) as (a, b):
        session = open_raw_session(a.url).headers["mcp-session-id"]
        (priming, _), _answer = answered_whole(a, session, 11, 1, 2)
        a.process.kill()
        a.process.wait(5)
        again = restart(a)
        try:
            wait_healthy(again)
            started = time.monotonic()
            events, _ = read_until_closed(open_get(b.port, session, last_event_id=priming), timeout=20)
            [error] = results_in(events, 11)
            assert "no longer holds it" in error["error"]["message"], error
            assert time.monotonic() - started < 10
        finally:
            again.stop()
