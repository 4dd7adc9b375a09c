"""A JSON-RPC id is unique only among requests in flight: it is free again the moment its answer is sent."""

from __future__ import annotations

import json
import time
from collections import Counter
from pathlib import Path

import anyio
import httpx2
import pytest
from starlette.types import Message

from mcp_runtime.web.sends import before_last_chunk
from tests.support.procs import metric, running
from tests.support.raw import open_raw_session, session_headers
from tests.support.redis_server import RedisServer, redis_env


async def test_the_callback_runs_once_just_before_the_last_chunk() -> None:
    sent: list[str] = []

    async def send(message: Message) -> None:
        sent.append("start" if message["type"] == "http.response.start" else repr(message.get("body")))

    wrapped = before_last_chunk(send, lambda: sent.append("freed"))
    await wrapped({"type": "http.response.start", "status": 200, "headers": []})
    await wrapped({"type": "http.response.body", "body": b"a", "more_body": True})
    assert "freed" not in sent
    await wrapped({"type": "http.response.body", "body": b"b", "more_body": False})
    await wrapped({"type": "http.response.body", "body": b"", "more_body": False})  # (never sent by servers)
    assert sent == ["start", "b'a'", "freed", "b'b'", "b''"]


@pytest.mark.parametrize("backend", ["memory", "redis"])
@pytest.mark.parametrize("accept", ["application/json, text/event-stream", "text/event-stream, application/json"])
def test_an_id_is_free_as_soon_as_its_answer_is_sent(
    tmp_path: Path, backend: str, accept: str, redis_server: RedisServer
) -> None:
    """Pings with one id on one keep-alive connection, each sent when the previous answer is read: never 409."""
    env = redis_env(redis_server) if backend == "redis" else {}
    with running(tmp_path, env) as proc:
        session = open_raw_session(proc.url).headers["mcp-session-id"]
        headers = session_headers(session, {"accept": accept})
        statuses: Counter[int] = Counter()
        with httpx2.Client(timeout=10) as http:
            for _ in range(300):
                response = http.post(proc.url, json={"jsonrpc": "2.0", "id": 7, "method": "ping"}, headers=headers)
                statuses[response.status_code] += 1
        assert statuses == {200: 300}, statuses


async def test_an_id_in_flight_is_still_refused(tmp_path: Path) -> None:
    """The other half of the rule: while a request is in flight, its id is taken (409)."""
    with running(tmp_path) as proc:
        session = open_raw_session(proc.url).headers["mcp-session-id"]
        headers = session_headers(session)
        slow = {
            "jsonrpc": "2.0",
            "id": 9,
            "method": "tools/call",
            "params": {"name": "slow", "arguments": {"seconds": 1}},
        }
        ping = {"jsonrpc": "2.0", "id": 9, "method": "ping"}
        async with httpx2.AsyncClient(timeout=10) as http, anyio.create_task_group() as tg:
            results: dict[str, int] = {}

            async def call_slow() -> None:
                results["slow"] = (await http.post(proc.url, json=slow, headers=headers)).status_code

            tg.start_soon(call_slow)
            await anyio.sleep(0.3)
            duplicate = await http.post(proc.url, json=ping, headers=headers)
            results["duplicate"] = duplicate.status_code
            assert json.loads(duplicate.text)["error"]["message"].startswith("Request id")
        assert results == {"slow": 200, "duplicate": 409}


def test_expired_sessions_are_counted_when_an_admission_removes_them(tmp_path: Path) -> None:
    """An expired session is counted as it is removed, whichever path removes it: here the next admission,
    long before the sweep."""
    env = {"MCP_SESSION_TTL_SECONDS": "1", "MCP_SWEEP_INTERVAL_SECONDS": "3600", "MCP_MAX_SESSIONS": "1"}
    with running(tmp_path, env) as proc:
        assert open_raw_session(proc.url).status_code == 200
        time.sleep(1.5)
        assert open_raw_session(proc.url).status_code == 200  # the cap of one: only after the purge
        assert metric(proc.base, "mcp_runtime_sessions_expired_total") == 1
