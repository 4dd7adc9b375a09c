"""Raw HTTP for the adversarial tests: exact requests, many at once, and what came back, whole or not."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import httpx2

from tests.procs import session_headers


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
