"""Hostile clients: answers that are not what they seem, huge or slow headers and bodies, fuzzed input.

Each test ends by checking the replica is still healthy and serving.
"""

from __future__ import annotations

import json
import socket
import time
from pathlib import Path
from typing import Any

import anyio
import httpx2
import mcp_types as types
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support.clients import balanced_client, mcp_client
from tests.support.procs import RuntimeProcess, running
from tests.support.raw import open_raw_session, post, session_headers, tool_call, tool_value
from tests.support.redis_server import RedisServer, redis_env, replicas


def healthy(rt: RuntimeProcess) -> None:
    assert rt.alive()
    assert httpx2.get(f"{rt.base}/healthz", timeout=5).status_code == 200
    session = open_raw_session(rt.url).headers["mcp-session-id"]
    listing = {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}
    assert httpx2.post(rt.url, json=listing, headers=session_headers(session)).status_code == 200


# Answers to server-to-client requests

BAD_ANSWERS = [
    {"id": 5, "result": {}},
    {"jsonrpc": "1.0", "id": 5, "result": {}},
    {"jsonrpc": "2.0", "id": True, "result": {}},
    {"jsonrpc": "2.0", "id": 5, "error": "boom"},
    {"jsonrpc": "2.0", "id": 5, "result": 7},
    {"jsonrpc": "2.0", "id": [5], "result": {}},
    {"jsonrpc": "2.0", "id": {"a": 1}, "error": {"code": 1}},
]


@pytest.mark.parametrize("body", BAD_ANSWERS, ids=[json.dumps(b) for b in BAD_ANSWERS])
def test_answer_shaped_bodies_that_are_not_json_rpc_get_400(runtime: RuntimeProcess, body: dict[str, Any]) -> None:
    session = open_raw_session(runtime.url).headers["mcp-session-id"]
    response = httpx2.post(runtime.url, json=body, headers=session_headers(session))
    assert response.status_code == 400, response.text
    assert response.json()["error"]["code"] in (types.INVALID_REQUEST, types.PARSE_ERROR)


async def elicited_field_named_method(_ctx: Any, params: types.ElicitRequestParams) -> types.ElicitResult:
    # An answer whose content has a field named "method": it must still be routed as an answer.
    return types.ElicitResult(action="accept", content={"answer": "it said method", "method": "tools/call"})


async def test_an_answer_mentioning_method_reaches_the_replica_that_asked(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    with replicas(tmp_path, redis_env(redis_server), count=2) as procs:
        client, balancer = balanced_client(procs)
        client.elicitation_callback = elicited_field_named_method  # type: ignore[assignment]
        async with client:
            for n in range(4):
                with anyio.fail_after(15):
                    result = await client.call_tool("ask", {"question": f"q{n}"})
                assert result.structured_content == {"result": "it said method"}, result
        assert len(balancer.by_port) == 2


def read_sse_until(sock: socket.socket, predicate: Any, timeout: float = 10) -> list[dict[str, Any]]:
    sock.settimeout(timeout)
    buffer = b""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        buffer += sock.recv(65536)
        messages = [
            json.loads(line[5:])
            for line in buffer.decode(errors="replace").splitlines()
            if line.startswith("data:") and line[5:].strip()  # (a priming event's data is empty)
        ]
        if any(predicate(m) for m in messages):
            return messages
    raise AssertionError(f"not seen in time: {buffer[-500:]!r}")


def test_another_principal_cannot_answer_or_probe_a_sessions_request(tmp_path: Path, redis_server: RedisServer) -> None:
    tokens = tmp_path / "tokens"
    tokens.write_text("token-of-alice\ntoken-of-mallory\n")
    env = redis_env(redis_server, MCP_AUTH_TOKEN_FILE=str(tokens))
    with replicas(tmp_path, env, count=2) as procs:
        alice = {"Authorization": "Bearer token-of-alice"}
        mallory = {"Authorization": "Bearer token-of-mallory"}
        form: dict[str, Any] = {"elicitation": {"form": {}}}
        session = open_raw_session(procs[0].url, alice, capabilities=form).headers["mcp-session-id"]
        # Alice's tool asks her a question on replica 0 (an SSE response that stays open).
        body = json.dumps(tool_call(3, "ask", {"question": "secret?"})).encode()
        headers = session_headers(session, alice)
        sock = socket.create_connection(("127.0.0.1", procs[0].port))
        head = f"POST /mcp HTTP/1.1\r\nHost: 127.0.0.1:{procs[0].port}\r\nContent-Length: {len(body)}\r\n"
        head += "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        sock.sendall(head.encode() + b"\r\n" + body)
        messages = read_sse_until(sock, lambda m: m.get("method") == "elicitation/create")
        asked = next(m for m in messages if m.get("method") == "elicitation/create")["id"]
        intruder = {"jsonrpc": "2.0", "id": asked, "result": {"action": "accept", "content": {"answer": "pwned"}}}
        for proc in procs:
            refused = httpx2.post(proc.url, json=intruder, headers=session_headers(session, mallory))
            assert refused.status_code == 404, refused.text
            # Any answer-shaped POST to another principal's session is 404, whatever its id.
            other = {**intruder, "id": 12345}
            assert httpx2.post(proc.url, json=other, headers=session_headers(session, mallory)).status_code == 404
        answer = {"jsonrpc": "2.0", "id": asked, "result": {"action": "accept", "content": {"answer": "alice's"}}}
        assert httpx2.post(procs[1].url, json=answer, headers=session_headers(session, alice)).status_code == 202
        final = read_sse_until(sock, lambda m: m.get("id") == 3)
        result = next(m for m in final if m.get("id") == 3)
        assert result["result"]["structuredContent"] == {"result": "alice's"}
        sock.close()


# Headers and bodies


def test_huge_headers_get_431_with_the_default_parser(tmp_path: Path) -> None:
    with running(tmp_path, {"MCP_MAX_REQUEST_HEADER_BYTES": "16384"}) as rt:
        rss_before = rss_kib(rt)
        for _ in range(4):
            sock = socket.create_connection(("127.0.0.1", rt.port), timeout=10)
            head = f"POST /mcp HTTP/1.1\r\nHost: 127.0.0.1:{rt.port}\r\nX-Big: ".encode()
            try:
                sock.sendall(head)
                for _ in range(256):  # 16 MiB, in 64 KiB pieces
                    sock.sendall(b"a" * 65536)
            except (BrokenPipeError, ConnectionResetError):
                pass
            reply = b""
            try:
                while chunk := sock.recv(4096):
                    reply += chunk
            except (ConnectionResetError, TimeoutError):
                pass
            assert reply.startswith(b"HTTP/1.1 431"), reply[:200]
            sock.close()
        assert rss_kib(rt) - rss_before < 20 * 1024  # not the ~70 MiB the four values would take
        # A request just under the limit is served.
        ok = httpx2.get(f"{rt.base}/healthz", headers={"X-Fine": "b" * 8000})
        assert ok.status_code == 200
        healthy(rt)


@pytest.mark.parametrize("parser", ["h11", "httptools"])
def test_header_limit_with_either_parser(tmp_path: Path, parser: str) -> None:
    with running(tmp_path, {"MCP_HTTP_PARSER": parser, "MCP_MAX_REQUEST_HEADER_BYTES": "4096"}) as rt:
        response = httpx2.get(f"{rt.base}/healthz", headers={f"X-H{i}": "v" * 100 for i in range(60)})
        assert response.status_code == 431
        assert httpx2.get(f"{rt.base}/healthz", headers={"X-Small": "v" * 1000}).status_code == 200


def rss_kib(rt: RuntimeProcess) -> int:
    for line in Path(f"/proc/{rt.process.pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


@pytest.mark.parametrize("parser", ["h11", "httptools"])
def test_slow_headers_and_bodies_are_dropped(tmp_path: Path, parser: str) -> None:
    env = {
        "MCP_HTTP_PARSER": parser,
        "MCP_REQUEST_HEADER_TIMEOUT_SECONDS": "1",
        "MCP_REQUEST_BODY_TIMEOUT_SECONDS": "1",
    }
    with running(tmp_path, env) as rt:
        # Headers that never end: the connection is closed.
        slow = [socket.create_connection(("127.0.0.1", rt.port), timeout=5) for _ in range(5)]
        for sock in slow:
            sock.sendall(b"POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        silent = socket.create_connection(("127.0.0.1", rt.port), timeout=5)  # sends nothing at all
        started = time.monotonic()
        for sock in [*slow, silent]:
            assert read_all(sock) == b""  # closed by the server, nothing sent
            sock.close()
        assert time.monotonic() - started < 4
        # A body that never completes: the connection is dropped, and nothing of the request is processed.
        session = open_raw_session(rt.url).headers["mcp-session-id"]
        call = json.dumps(tool_call(1, "session_increment", {"by": 10})).encode()
        sock = socket.create_connection(("127.0.0.1", rt.port), timeout=5)
        head = f"POST /mcp HTTP/1.1\r\nHost: 127.0.0.1:{rt.port}\r\nContent-Length: {len(call) + 50}\r\n"
        head += "".join(f"{k}: {v}\r\n" for k, v in session_headers(session).items())
        started = time.monotonic()
        sock.sendall(head.encode() + b"\r\n" + call)  # a whole message, and 50 bytes that never come
        assert read_all(sock) == b""
        assert time.monotonic() - started < 4
        sock.close()

        async def count() -> Any:
            async with httpx2.AsyncClient(timeout=10) as client:
                return tool_value(await post(client, rt.url, tool_call(2, "session_increment", {"by": 0}), session))

        assert anyio.run(count) == 0
        healthy(rt)


def read_all(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection (within the socket's timeout)."""
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    return data


def test_a_client_that_disconnects_mid_body_has_nothing_processed(runtime: RuntimeProcess) -> None:
    session = open_raw_session(runtime.url).headers["mcp-session-id"]
    call = json.dumps(tool_call(1, "session_increment", {"by": 10})).encode()
    for _ in range(3):
        sock = socket.create_connection(("127.0.0.1", runtime.port), timeout=5)
        head = f"POST /mcp HTTP/1.1\r\nHost: 127.0.0.1:{runtime.port}\r\nContent-Length: {len(call) + 100}\r\n"
        head += "".join(f"{k}: {v}\r\n" for k, v in session_headers(session).items())
        sock.sendall(head.encode() + b"\r\n" + call)  # a whole message, then the client goes away
        time.sleep(0.2)
        sock.close()
    time.sleep(0.3)

    async def count() -> Any:
        async with httpx2.AsyncClient(timeout=10) as client:
            return tool_value(await post(client, runtime.url, tool_call(2, "session_increment", {"by": 0}), session))

    assert anyio.run(count) == 0


# Fuzzing: whatever arrives, the answer is a 2xx or a 4xx with a JSON-RPC error, and the server stays healthy.

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=12,
)
ids = st.none() | st.booleans() | st.integers() | st.text(max_size=8) | st.floats(allow_nan=False)
answer_shapes = st.fixed_dictionaries(
    {},
    optional={
        "jsonrpc": st.sampled_from(["2.0", "1.0", "", 2]),
        "id": ids,
        "result": json_values,
        "error": json_values | st.fixed_dictionaries({"code": st.integers(), "message": st.text(max_size=20)}),
        "method": st.text(max_size=20),
        "params": json_values,
    },
)
bodies = st.one_of(
    answer_shapes.map(lambda m: json.dumps(m).encode()),
    json_values.map(lambda v: json.dumps(v).encode()),
    st.binary(max_size=200),
)


@pytest.fixture(scope="module")
def fuzz_target(tmp_path_factory: pytest.TempPathFactory) -> Any:
    with running(tmp_path_factory.mktemp("fuzz"), {"MCP_TRANSPORT_IDLE_SECONDS": "0.5"}) as rt:
        session = open_raw_session(rt.url).headers["mcp-session-id"]
        with httpx2.Client(timeout=10) as client:
            yield rt, session, client


def assert_no_5xx(response: httpx2.Response) -> None:
    assert response.status_code < 500, (response.status_code, response.text[:300])
    if response.status_code >= 400:
        assert "error" in response.json(), (response.status_code, response.headers, response.text[:300])


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=bodies, with_session=st.booleans())
def test_fuzzed_bodies(fuzz_target: Any, body: bytes, with_session: bool) -> None:
    rt, session, client = fuzz_target
    headers = (
        session_headers(session)
        if with_session
        else {"Content-Type": "application/json", "Accept": "application/json, text/event-stream"}
    )
    try:
        response = client.post(rt.url, content=body, headers=headers)
    except httpx2.ReadTimeout:
        pytest.fail(f"no answer in 10 s to {body!r}")
    if response.status_code == 200 and json.loads(body or b"null") is not None:
        pass
    assert_no_5xx(response)


header_values = st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=80).map(str.strip)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    session_id=header_values,
    version=header_values | st.sampled_from(["2025-11-25", "2026-07-28", "2024-11-05"]),
    accept=header_values,
    last_event_id=header_values,
    method=st.sampled_from(["GET", "POST", "DELETE"]),
)
def test_fuzzed_headers(
    fuzz_target: Any, session_id: str, version: str, accept: str, last_event_id: str, method: str
) -> None:
    rt, session, client = fuzz_target
    headers = {
        "Content-Type": "application/json",
        "Accept": accept,
        "mcp-session-id": session_id or session,
        "mcp-protocol-version": version,
        "Last-Event-ID": last_event_id,
    }
    body = json.dumps(tool_call(1, "add", {"a": 1, "b": 2})).encode() if method == "POST" else None
    try:
        with client.stream(method, rt.url, content=body, headers=headers, timeout=3) as response:
            if response.headers.get("content-type", "").startswith("text/event-stream") and method == "GET":
                return  # a GET stream that was opened: a valid request (closed by leaving)
            response.read()
    except httpx2.ReadTimeout:
        pytest.fail(f"no answer in 3 s: {method} {headers}")
    assert_no_5xx(response)


def test_healthy_after_fuzzing(fuzz_target: Any) -> None:
    rt, _, _ = fuzz_target
    healthy(rt)
    assert "Traceback" not in rt.log(), rt.log()[-3000:]


async def test_the_official_client_still_works_after_fuzzing(fuzz_target: Any) -> None:
    rt, _, _ = fuzz_target
    async with mcp_client(rt.url, "handshake") as client:
        assert (await client.call_tool("add", {"a": 2, "b": 3})).structured_content == {"result": 5}
