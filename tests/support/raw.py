"""Raw HTTP and raw sockets: exact requests, many at once, and what came back, whole or not; GET streams read
event by event."""

from __future__ import annotations

import json
import socket
import time
from dataclasses import dataclass
from typing import Any

import httpx2

JSON_HEADERS = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream"}
INIT_BODY = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {
        "protocolVersion": "2025-11-25",
        "capabilities": {},
        "clientInfo": {"name": "raw-test", "version": "0"},
    },
}
# A modern-era request carries its protocol version and client in `_meta`, and its method and name in headers.
MODERN_META = {
    "io.modelcontextprotocol/protocolVersion": "2026-07-28",
    "io.modelcontextprotocol/clientInfo": {"name": "mcp", "version": "0.1.0"},
    "io.modelcontextprotocol/clientCapabilities": {},
}
MODERN_HEADERS = {"mcp-protocol-version": "2026-07-28", "mcp-method": "tools/call", "mcp-name": "add"}


def session_headers(session_id: str, extra: dict[str, str] | None = None) -> dict[str, str]:
    return {**JSON_HEADERS, "mcp-session-id": session_id, "mcp-protocol-version": "2025-11-25", **(extra or {})}


def open_raw_session(
    base_url: str, headers: dict[str, str] | None = None, capabilities: dict[str, Any] | None = None
) -> httpx2.Response:
    """initialize + initialized over plain HTTP; returns the initialize response."""
    h = {**JSON_HEADERS, **(headers or {})}
    body: dict[str, Any] = json.loads(json.dumps(INIT_BODY))
    if capabilities is not None:
        body["params"]["capabilities"] = capabilities
    response = httpx2.post(base_url, json=body, headers=h, timeout=10)
    session = response.headers.get("mcp-session-id")
    if response.status_code == 200 and session:
        note = {"jsonrpc": "2.0", "method": "notifications/initialized"}
        h2 = {**h, "mcp-session-id": session, "mcp-protocol-version": "2025-11-25"}
        httpx2.post(base_url, json=note, headers=h2, timeout=10).raise_for_status()
    return response


@dataclass
class Answer:
    status: int
    headers: httpx2.Headers
    messages: list[dict[str, Any]]  # JSON-RPC messages in the body (one for JSON, each SSE event's data)
    complete: bool  # the body ended properly (an SSE stream with the request's response or a full JSON body)

    @property
    def result(self) -> Any:
        for message in self.messages:
            if "result" in message or "error" in message:
                return message
        return None


def parse_body(response: httpx2.Response, text: str) -> list[dict[str, Any]]:
    if response.headers.get("content-type", "").startswith("text/event-stream"):
        messages = []
        for line in text.splitlines():
            if line.startswith("data:") and line[5:].strip():
                messages.append(json.loads(line[5:]))
        return messages
    return [json.loads(text)] if text.strip() else []


async def post(
    client: httpx2.AsyncClient, url: str, body: Any, session: str | None = None, headers: dict[str, str] | None = None
) -> Answer:
    """POST one message and read the whole answer; a cut connection raises (httpx2.TransportError)."""
    all_headers = session_headers(session, headers) if session else {**session_headers("x", headers)}
    if not session:
        all_headers.pop("mcp-session-id")
        all_headers.pop("mcp-protocol-version")
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    async with client.stream("POST", url, content=content, headers=all_headers) as response:
        text = (await response.aread()).decode()
    messages = parse_body(response, text)
    complete = bool(messages) or response.status_code == 202
    return Answer(response.status_code, response.headers, messages, complete)


def tool_call(request_id: int | str, name: str, arguments: dict[str, Any]) -> dict[str, Any]:
    return {
        "jsonrpc": "2.0",
        "id": request_id,
        "method": "tools/call",
        "params": {"name": name, "arguments": arguments},
    }


def tool_value(answer: Answer) -> Any:
    """A successful tool call's structured result (asserting it succeeded)."""
    message = answer.result
    assert answer.status == 200 and message is not None and "result" in message, (answer.status, answer.messages)
    result = message["result"]
    assert not result.get("isError"), result
    return result["structuredContent"]["result"]


def set_note(url: str, session: str, text: str) -> None:
    """Call the demo app's `note_set`, which notifies the session's GET stream (resources/updated)."""
    call = {
        "jsonrpc": "2.0",
        "id": 4,
        "method": "tools/call",
        "params": {"name": "note_set", "arguments": {"text": text}},
    }
    assert httpx2.post(url, json=call, headers=session_headers(session)).status_code == 200


# GET streams on raw sockets


def open_get(port: int, session: str, last_event_id: str | None = None) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    resume = f"Last-Event-ID: {last_event_id}\r\n" if last_event_id else ""
    sock.sendall(
        f"GET /mcp HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAccept: text/event-stream\r\n"
        f"Mcp-Session-Id: {session}\r\nMcp-Protocol-Version: 2025-11-25\r\n{resume}\r\n".encode()
    )
    head = b""
    while b"\r\n\r\n" not in head:
        head += sock.recv(1)
    assert head.startswith(b"HTTP/1.1 200"), head
    return sock


def read_events(sock: socket.socket, count: int, timeout: float = 5) -> list[tuple[str, str]]:
    """(id, data) of the next `count` SSE events on a raw GET stream (keep-alive comments skipped)."""
    sock.settimeout(timeout)
    buffer = b""
    events: list[tuple[str, str]] = []
    while len(events) < count:
        chunk = sock.recv(65536)
        assert chunk, "stream closed"
        buffer += chunk
        while b"\r\n\r\n" in buffer:
            block, buffer = buffer.split(b"\r\n\r\n", 1)
            fields = dict(line.split(": ", 1) for line in block.decode(errors="replace").split("\r\n") if ": " in line)
            if "data" in fields:
                events.append((fields.get("id", ""), fields["data"]))
    return events


# POST streams on raw sockets (a connection cut at an exact point)


def open_post(port: int, session: str, body: dict[str, Any]) -> socket.socket:
    """POST one request on a raw socket and return it once the SSE response's head has come."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    data = json.dumps(body).encode()
    sock.sendall(
        f"POST /mcp HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n"
        f"Accept: application/json, text/event-stream\r\nMcp-Session-Id: {session}\r\n"
        f"Mcp-Protocol-Version: 2025-11-25\r\nContent-Length: {len(data)}\r\n\r\n".encode()
        + data
    )
    head = b""
    while b"\r\n\r\n" not in head:
        head += sock.recv(1)
    assert head.startswith(b"HTTP/1.1 200"), head
    assert b"text/event-stream" in head.lower(), head
    return sock


def read_until_closed(sock: socket.socket, timeout: float = 30) -> tuple[list[tuple[str, str]], bytes]:
    """Every SSE event (id, data) until the server ends the response; and the raw bytes (for `retry:`)."""
    sock.settimeout(timeout)
    raw = b""
    deadline = time.monotonic() + timeout
    while not raw.endswith(b"0\r\n\r\n"):  # the last chunk of a chunked response
        assert time.monotonic() < deadline, raw[-500:]
        chunk = sock.recv(65536)
        if not chunk:
            break
        raw += chunk
    return parse_events(raw), raw


def parse_events(raw: bytes) -> list[tuple[str, str]]:
    events = []
    for block in raw.split(b"\r\n\r\n"):
        fields = dict(line.split(": ", 1) for line in block.decode(errors="replace").split("\r\n") if ": " in line)
        if "data" in fields:
            events.append((fields.get("id", ""), fields["data"]))
    return events


def results_in(events: list[tuple[str, str]], request_id: int | str) -> list[dict[str, Any]]:
    answers = []
    for _, data in events:
        message = json.loads(data) if data else {}
        if message.get("id") == request_id and ("result" in message or "error" in message):
            answers.append(message)
    return answers
