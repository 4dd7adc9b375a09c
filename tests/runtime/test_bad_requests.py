"""Bad input gets a 4xx with a JSON-RPC error and never takes the process down."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx2
import pytest

from tests.support.procs import RuntimeProcess, running
from tests.support.raw import JSON_HEADERS, open_raw_session, session_headers


@pytest.fixture(scope="module")
def rt(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RuntimeProcess]:
    with running(tmp_path_factory.mktemp("bad"), {"MCP_MAX_REQUEST_BODY_BYTES": "65536"}) as proc:
        yield proc


def assert_jsonrpc_4xx(response: httpx2.Response, status: int) -> None:
    assert response.status_code == status, (response.status_code, response.text)
    body = response.json()
    assert body["jsonrpc"] == "2.0" and isinstance(body["error"]["message"], str) and body["error"]["message"]


@pytest.fixture
def session(rt: RuntimeProcess) -> str:
    session_id: str = open_raw_session(rt.url).headers["mcp-session-id"]
    return session_id


@pytest.mark.parametrize("body", [b"{not json", b"", b"\xff\xfe", b'{"jsonrpc": "2.0", "id": 1, "method": '])
def test_malformed_json_without_session(rt: RuntimeProcess, body: bytes) -> None:
    assert_jsonrpc_4xx(httpx2.post(rt.url, content=body, headers=JSON_HEADERS), 400)


@pytest.mark.parametrize("body", [b"{not json", b"[1, 2]", b'{"hello": "world"}', b"42"])
def test_malformed_messages_in_a_session(rt: RuntimeProcess, session: str, body: bytes) -> None:
    assert_jsonrpc_4xx(httpx2.post(rt.url, content=body, headers=session_headers(session)), 400)


def test_non_initialize_without_session(rt: RuntimeProcess) -> None:
    message = {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}
    response = httpx2.post(rt.url, json=message, headers=JSON_HEADERS)
    assert_jsonrpc_4xx(response, 400)
    assert "Missing session ID" in response.json()["error"]["message"]


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", ""])
def test_wrong_content_type(rt: RuntimeProcess, content_type: str) -> None:
    headers = {**JSON_HEADERS, "Content-Type": content_type}
    assert_jsonrpc_4xx(httpx2.post(rt.url, content=b"{}", headers=headers), 415)


def test_wrong_accept_header(rt: RuntimeProcess, session: str) -> None:
    headers = session_headers(session, {"Accept": "text/html"})
    message = {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}
    assert_jsonrpc_4xx(httpx2.post(rt.url, json=message, headers=headers), 406)


def test_oversized_body_declared(rt: RuntimeProcess) -> None:
    body = b'{"x": "' + b"a" * 70_000 + b'"}'
    assert_jsonrpc_4xx(httpx2.post(rt.url, content=body, headers=JSON_HEADERS), 413)


def test_oversized_body_streamed_without_length(rt: RuntimeProcess) -> None:
    def chunks() -> Iterator[bytes]:
        for _ in range(20):
            yield b"a" * 10_000

    assert_jsonrpc_4xx(httpx2.post(rt.url, content=chunks(), headers=JSON_HEADERS), 413)


def test_unsupported_method(rt: RuntimeProcess) -> None:
    response = httpx2.put(rt.url, content=b"{}", headers=JSON_HEADERS)
    assert_jsonrpc_4xx(response, 405)
    assert response.headers["allow"] == "GET, POST, DELETE"


def test_get_without_session(rt: RuntimeProcess) -> None:
    assert_jsonrpc_4xx(httpx2.get(rt.url, headers={"Accept": "text/event-stream"}), 400)


def test_unknown_path(rt: RuntimeProcess) -> None:
    assert_jsonrpc_4xx(httpx2.get(f"{rt.base}/nope"), 404)


@pytest.mark.parametrize(
    "body",
    [
        b'{"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": "oops"}',
        b'{"jsonrpc": "2.0", "id": 1, "method": "tools/call"}',
        b"{broken",
    ],
)
def test_malformed_modern_requests(rt: RuntimeProcess, body: bytes) -> None:
    headers = {**JSON_HEADERS, "mcp-protocol-version": "2026-07-28", "mcp-method": "tools/call"}
    response = httpx2.post(rt.url, content=body, headers=headers)
    assert 400 <= response.status_code < 500, (response.status_code, response.text)


def test_unknown_protocol_version_header(rt: RuntimeProcess) -> None:
    headers = {**JSON_HEADERS, "mcp-protocol-version": "1999-01-01"}
    response = httpx2.post(rt.url, json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"}, headers=headers)
    assert 400 <= response.status_code < 500, (response.status_code, response.text)


def test_still_serving_after_all_that(rt: RuntimeProcess, tmp_path: Path) -> None:
    assert rt.alive()
    assert open_raw_session(rt.url).status_code == 200
    log = rt.log()
    assert "Traceback" not in log, log
