"""The form of an answer, decided by its first outgoing message (`sessions/exchange.py`, `sessions/modern.py`).

A call whose answer is its first message is answered `application/json`; one that sends something first (a
progress notification), or stays silent past the JSON window, gets an SSE stream opened with a priming event, and
can be resumed with Last-Event-ID on any replica; a cancelled call is never answered. Real runtimes on raw
sockets (so that a connection can be cut at an exact point), every answer checked against what comes later.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from pathlib import Path
from typing import Any

import httpx2
import pytest
from hypothesis import given
from hypothesis import strategies as st
from mcp.server.streamable_http import check_accept_headers
from starlette.requests import Request

from mcp_runtime.web.head import accepts, read_head
from tests.support.procs import RuntimeProcess, running
from tests.support.raw import (
    JSON_HEADERS,
    MODERN_HEADERS,
    MODERN_META,
    open_get,
    open_post,
    open_raw_session,
    parse_events,
    read_events,
    read_until_closed,
    results_in,
    session_headers,
    tool_call,
)
from tests.support.redis_server import RedisServer, redis_env, replicas

CALL_ID = 7


def slow(seconds: float, *, progress: bool, request_id: int | str = CALL_ID) -> dict[str, Any]:
    """The demo's `slow`: silent without a progress token, reporting progress ten times a second with one."""
    call = tool_call(request_id, "slow", {"seconds": seconds})
    if progress:
        call["params"]["_meta"] = {"progressToken": "p"}
    return call


def session_on(proc: RuntimeProcess) -> str:
    return str(open_raw_session(proc.url).headers["mcp-session-id"])


# JSON when the answer comes first


def test_an_answer_that_comes_first_is_json_and_the_session_goes_on(tmp_path: Path) -> None:
    with running(tmp_path) as proc:
        init = httpx2.post(proc.url, json=json.loads(json.dumps(INIT)), headers=JSON_HEADERS, timeout=10)
        assert init.status_code == 200 and init.headers["content-type"] == "application/json"
        assert init.json()["result"]["protocolVersion"] == "2025-11-25"
        session = init.headers["mcp-session-id"]
        for n in range(20):
            response = httpx2.post(
                proc.url, json=tool_call(n, "add", {"a": n, "b": 1}), headers=session_headers(session)
            )
            assert response.status_code == 200 and response.headers["content-type"] == "application/json"
            assert response.headers["mcp-session-id"] == session
            assert response.json() == {
                "jsonrpc": "2.0",
                "id": n,
                "result": {
                    "content": [{"type": "text", "text": str(n + 1)}],
                    "structuredContent": {"result": n + 1},
                    "isError": False,
                },
            }


def test_a_call_that_reports_progress_is_a_stream_primed_first(tmp_path: Path) -> None:
    with running(tmp_path) as proc:
        session = session_on(proc)
        post = open_post(proc.port, session, slow(0.3, progress=True))
        events, raw = read_until_closed(post)
        post.close()
        assert events[0][1] == "" and events[0][0], events  # the priming event: an id, empty data
        assert b"retry: " in raw.split(b"\r\n\r\n")[0] + raw.split(b"\r\n\r\n")[1]
        progress = [json.loads(data) for _, data in events[1:-1]]
        assert [p["params"]["progress"] for p in progress] == [1, 2, 3], progress
        assert all(event_id for event_id, _ in events[1:]), events  # each kept, resumable on its own
        [answer] = results_in(events, CALL_ID)
        assert answer["result"]["structuredContent"]["result"] == "waited 0.3s"


def test_the_stock_sdk_accept_rules_hold(tmp_path: Path) -> None:
    """406 unless the client takes both forms (the SDK transport's rule), and 415 for a body that is not JSON."""
    with running(tmp_path) as proc:
        session = session_on(proc)
        call = tool_call(1, "add", {"a": 1, "b": 2})
        only_json = {**session_headers(session), "Accept": "application/json"}
        assert httpx2.post(proc.url, json=call, headers=only_json).status_code == 406
        wildcard = {**session_headers(session), "Accept": "*/*"}
        assert httpx2.post(proc.url, json=call, headers=wildcard).status_code == 200
        text = {**session_headers(session), "Content-Type": "text/plain"}
        response = httpx2.post(proc.url, content=json.dumps(call), headers=text)
        assert response.status_code == 415 and response.json()["error"]["message"].startswith("Unsupported")


@given(
    st.lists(
        st.sampled_from(
            [
                "application/json",
                "text/event-stream",
                "*/*",
                "text/*",
                "application/*",
                "text/html",
                "application/xml",
                "APPLICATION/JSON",
                "text/event-stream;q=0.5",
                " application/json ",
                "",
            ]
        ),
        max_size=4,
    )
)
def test_accepts_agrees_with_the_sdk_for_any_accept_header(types: list[str]) -> None:
    header = ",".join(types)
    scope = {"type": "http", "method": "POST", "headers": [(b"accept", header.encode())], "client": None}
    assert accepts(read_head(scope)) == check_accept_headers(Request(scope))


# A silent call: its stream opens after the JSON window, and can be resumed


@pytest.mark.parametrize("backend", ["memory", "redis"])
def test_a_silent_call_opens_its_stream_after_the_window_and_is_resumed_elsewhere(
    tmp_path: Path, backend: str, request: pytest.FixtureRequest
) -> None:
    env = {"MCP_JSON_WINDOW_SECONDS": "0.3"}
    if backend == "memory":
        with running(tmp_path, env) as proc:
            check_resumed_silent_call(proc, proc)
        return
    redis_server: RedisServer = request.getfixturevalue("redis_server")
    with replicas(tmp_path, {**redis_env(redis_server), **env}, count=2) as (a, b):
        check_resumed_silent_call(a, b)


def check_resumed_silent_call(runner: RuntimeProcess, resumer: RuntimeProcess) -> None:
    session = session_on(runner)
    started = time.monotonic()
    post = open_post(runner.port, session, slow(1.5, progress=False))
    [(priming_id, data)] = read_events(post, 1, timeout=5)
    assert data == "" and priming_id and time.monotonic() - started < 1.4
    post.close()  # the connection is cut mid-call
    get = open_get(resumer.port, session, last_event_id=priming_id)
    events, _ = read_until_closed(get, timeout=10)
    get.close()
    [answer] = results_in(events, CALL_ID)  # exactly once
    assert answer["result"]["structuredContent"]["result"] == "waited 1.5s"
    # The stream is over: resumed again from its last event, nothing more comes.
    last_id = events[-1][0]
    if last_id:
        again = open_get(resumer.port, session, last_event_id=last_id)
        more, _ = read_until_closed(again, timeout=5)
        again.close()
        assert not results_in(more, CALL_ID), more


def test_with_no_window_every_resumable_call_opens_its_stream_at_once(tmp_path: Path) -> None:
    with running(tmp_path, {"MCP_JSON_WINDOW_SECONDS": "0"}) as proc:
        session = session_on(proc)
        post = open_post(proc.port, session, tool_call(CALL_ID, "add", {"a": 2, "b": 2}))
        events, _ = read_until_closed(post)
        post.close()
        assert events[0][1] == "" and events[0][0]
        [answer] = results_in(events, CALL_ID)
        assert answer["result"]["structuredContent"]["result"] == 4


def test_json_response_answers_with_json_only(tmp_path: Path) -> None:
    with running(tmp_path, {"MCP_JSON_RESPONSE": "true"}) as proc:
        session = session_on(proc)
        response = httpx2.post(proc.url, json=slow(0.2, progress=True), headers=session_headers(session), timeout=10)
        assert response.headers["content-type"] == "application/json"
        assert response.json()["result"]["structuredContent"]["result"] == "waited 0.2s"


# Cancellation


def test_a_cancelled_call_is_never_answered_and_its_id_is_free_again(tmp_path: Path) -> None:
    with running(tmp_path, {"MCP_JSON_WINDOW_SECONDS": "0.2"}) as proc:
        session = session_on(proc)
        post = open_post(proc.port, session, slow(5, progress=False))
        assert read_events(post, 1)[0][1] == ""  # primed
        cancel = {"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": CALL_ID}}
        assert httpx2.post(proc.url, json=cancel, headers=session_headers(session)).status_code == 202
        started = time.monotonic()
        events, _ = read_until_closed(post, timeout=5)
        post.close()
        assert time.monotonic() - started < 2 and not results_in(events, CALL_ID), events
        again = httpx2.post(
            proc.url, json=tool_call(CALL_ID, "add", {"a": 1, "b": 1}), headers=session_headers(session)
        )
        assert again.status_code == 200 and again.json()["result"]["structuredContent"]["result"] == 2
        assert "Traceback" not in proc.log()


# Many at once on one session, both forms mixed, across replicas


def test_concurrent_calls_of_both_forms_on_one_session_across_replicas(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    with replicas(tmp_path, redis_env(redis_server), count=2) as procs:
        session = session_on(procs[0])
        failures: list[str] = []

        def worker(n: int) -> None:
            proc = procs[n % 2]
            with httpx2.Client(timeout=15) as http:
                for k in range(10):
                    request_id = f"w{n}-{k}"
                    progress = k % 3 == 0
                    body = (
                        slow(0.05, progress=True, request_id=request_id)
                        if progress
                        else tool_call(request_id, "add", {"a": n, "b": k})
                    )
                    response = http.post(proc.url, json=body, headers=session_headers(session))
                    kind = response.headers.get("content-type", "")
                    if progress:
                        answers = results_in(parse_events(response.content), request_id)
                        ok = kind.startswith("text/event-stream") and len(answers) == 1
                    else:
                        ok = (
                            kind == "application/json"
                            and response.json()["result"]["structuredContent"]["result"] == n + k
                            and response.json()["id"] == request_id
                        )
                    if not ok:
                        failures.append(f"{request_id}: {response.status_code} {kind} {response.text[:300]}")

        threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        assert not failures, failures[:5]
        for proc in procs:
            assert "Traceback" not in proc.log(), proc.log()[-3000:]


# The modern era


def test_a_modern_call_is_json_unless_it_reports_progress_first(tmp_path: Path) -> None:
    with running(tmp_path) as proc:
        plain = tool_call(1, "add", {"a": 1, "b": 2})
        plain["params"]["_meta"] = MODERN_META
        response = httpx2.post(proc.url, json=plain, headers={**JSON_HEADERS, **MODERN_HEADERS})
        assert response.status_code == 200 and response.headers["content-type"] == "application/json"
        assert response.json()["result"]["structuredContent"]["result"] == 3
        progress = tool_call(2, "slow", {"seconds": 0.2})
        progress["params"]["_meta"] = {**MODERN_META, "progressToken": "m"}
        headers = {**JSON_HEADERS, **MODERN_HEADERS, "mcp-name": "slow"}
        response = httpx2.post(proc.url, json=progress, headers=headers, timeout=10)
        assert response.headers["content-type"].startswith("text/event-stream")
        events = parse_events(response.content)
        kinds = [json.loads(data).get("method", "answer") for _, data in events]
        assert kinds == ["notifications/progress", "notifications/progress", "answer"], kinds
        assert results_in(events, 2)[0]["result"]["structuredContent"]["result"] == "waited 0.2s"


def test_a_modern_client_that_leaves_a_long_call_cancels_it(tmp_path: Path) -> None:
    with running(tmp_path) as proc:
        call = tool_call(3, "slow", {"seconds": 3})
        call["params"]["_meta"] = MODERN_META
        body = json.dumps(call).encode()
        headers = "".join(f"{k}: {v}\r\n" for k, v in {**JSON_HEADERS, **MODERN_HEADERS, "mcp-name": "slow"}.items())
        sock = socket.create_connection(("127.0.0.1", proc.port), timeout=5)
        sock.sendall(
            f"POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\n{headers}Content-Length: {len(body)}\r\n\r\n".encode() + body
        )
        time.sleep(1.5)
        sock.close()
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and "mcp_runtime_requests_in_flight 1.0" in metrics(proc):
            time.sleep(0.1)
        assert "mcp_runtime_requests_in_flight 0.0" in metrics(proc)
        assert "Traceback" not in proc.log()


def metrics(proc: RuntimeProcess) -> str:
    return httpx2.get(f"http://127.0.0.1:{proc.port}/metrics").text


INIT = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "forms", "version": "1"}},
}
