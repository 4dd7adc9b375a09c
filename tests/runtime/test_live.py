"""Live sessions (`sessions/live.py`) in this process: single flight, in-flight holds, idle release, retirement.

A real low-level `Server`, its requests served the runtime's way (`sessions/exchange.py`); the session records
`load` returns are plain data.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import anyio
import mcp_types as types
import pytest
from mcp.server.lowlevel.server import Server
from starlette.requests import Request

from mcp_runtime.backends import BackendUnavailable, SessionRecord
from mcp_runtime.sessions.event_ids import GET_STREAM
from mcp_runtime.sessions.events import LocalEvents
from mcp_runtime.sessions.exchange import PostExchange
from mcp_runtime.sessions.live import BLOCK_BITS, PREFIX_SHIFT, LiveSession, LiveSessions, SessionGone

PROTOCOL = "2025-11-25"
CLIENT_PARAMS = types.InitializeRequestParams(
    protocol_version=PROTOCOL,
    capabilities=types.ClientCapabilities(),
    client_info=types.Implementation(name="live-test", version="1"),
)


async def list_tools(_ctx: Any, _params: types.PaginatedRequestParams | None) -> types.ListToolsResult:
    return types.ListToolsResult(tools=[types.Tool(name="noop", input_schema={"type": "object"})])


def record(session_id: str, owner: str | None = "alice", protocol_version: str | None = PROTOCOL) -> SessionRecord:
    now = time.monotonic()
    params = CLIENT_PARAMS.model_dump_json(by_alias=True, exclude_none=True)
    return SessionRecord(session_id, "addr:1", owner, now, now, protocol_version, params)


class Events(LocalEvents):
    """The in-process session events, and what the live sessions told them: watches, recorded messages."""

    def __init__(self) -> None:
        super().__init__()
        self.watched: Counter[str] = Counter()
        self.recorded: list[tuple[str, str, str]] = []

    async def watch(self, session_id: str, messages: bool = False) -> None:
        self.watched[session_id] += 1
        await super().watch(session_id, messages)

    async def unwatch(self, session_id: str, messages: bool = False) -> None:
        self.watched[session_id] -= 1
        await super().unwatch(session_id, messages)

    async def record(self, session_id: str, stream: str, message: str, final: bool) -> str:
        self.recorded.append((session_id, stream, message))
        return await super().record(session_id, stream, message, final)


@dataclass
class Harness:
    """LiveSessions, and what they told the rest of the runtime: watches, live counts, recorded messages."""

    live: LiveSessions = field(init=False)
    events: Events = field(default_factory=Events)
    counts: list[int] = field(default_factory=list)

    @property
    def watched(self) -> Counter[str]:
        return self.events.watched


@asynccontextmanager
async def running(idle_seconds: float = 60.0) -> AsyncIterator[Harness]:
    """LiveSessions bound to a task group and a real server's lifespan, as the session manager runs them."""
    server: Server[Any] = Server("live-test", on_list_tools=list_tools)
    harness = Harness()
    harness.live = LiveSessions(
        server,
        harness.events,
        json_response=True,
        idle_seconds=idle_seconds,
        runner="live-test",
        on_count=harness.counts.append,
    )
    async with server.lifespan(server) as state, anyio.create_task_group() as tg:
        harness.live.bind(tg, state)
        try:
            yield harness
        finally:
            tg.cancel_scope.cancel()
            harness.live.bind(None)


def loader(
    result: SessionRecord | Exception | None, delay: float = 0.0
) -> tuple[Callable[[], Awaitable[SessionRecord | None]], list[int]]:
    """A `load` giving `result` after `delay` (raising it if it is an exception), and how often it was called."""
    calls = [0]

    async def load() -> SessionRecord | None:
        calls[0] += 1
        await anyio.sleep(delay)
        if isinstance(result, Exception):
            raise result
        return result

    return load, calls


async def ended(live: LiveSession, within: float = 5.0) -> None:
    """Until the live session has ended."""
    with anyio.fail_after(within):
        while not live.ended:
            await anyio.sleep(0.01)


async def call(live: LiveSession, message: dict[str, Any]) -> tuple[int, Any]:
    """Serve one request in the live session as the session manager does; (status, JSON body)."""
    body = json.dumps(message).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"accept", b"application/json, text/event-stream"),
        (b"mcp-session-id", live.session_id.encode()),
        (b"mcp-protocol-version", PROTOCOL.encode()),
    ]
    scope = {"type": "http", "method": "POST", "path": "/mcp", "headers": headers, "query_string": b""}
    sent: list[MutableMapping[str, Any]] = []
    given = False

    async def receive() -> dict[str, Any]:
        nonlocal given
        if not given:
            given = True
            return {"type": "http.request", "body": body, "more_body": False}
        await anyio.sleep_forever()
        raise AssertionError

    async def send(message: MutableMapping[str, Any]) -> None:
        sent.append(message)

    exchange = PostExchange(
        live,
        message["id"],
        message["method"],
        message.get("params"),
        Request(scope, receive),
        send,
        run=None,
        resumable=False,
        retry_ms=None,
        json_window=None,
    )
    with anyio.fail_after(10):
        await exchange.serve()
    status = next(m["status"] for m in sent if m["type"] == "http.response.start")
    payload = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return status, json.loads(payload) if payload else None


# Single flight


async def test_concurrent_requests_for_one_session_build_it_once() -> None:
    async with running() as h:
        load, calls = loader(record("s1"), delay=0.2)
        results: list[LiveSession] = []

        async def acquire() -> None:
            results.append(await h.live.acquire("s1", load))

        async with anyio.create_task_group() as tg:
            for _ in range(10):
                tg.start_soon(acquire)
        assert calls == [1]
        assert len(results) == 10 and all(live is results[0] for live in results)
        assert results[0].in_flight == 10 and len(h.live) == 1
        assert h.watched["s1"] == 1
        for live in results:
            h.live.release(live)
        assert results[0].in_flight == 0 and h.live.get("s1") is results[0]


async def test_a_session_already_live_is_not_loaded_again() -> None:
    async with running() as h:
        load, calls = loader(record("s1"))
        first = await h.live.acquire("s1", load)
        h.live.release(first)
        again = await h.live.acquire("s1", load)
        h.live.release(again)
        assert again is first and calls == [1]


@pytest.mark.parametrize("found", [None, record("s1", protocol_version=None)], ids=["no-record", "never-established"])
async def test_a_session_without_a_record_is_gone_for_every_waiter(found: SessionRecord | None) -> None:
    async with running() as h:
        load, calls = loader(found, delay=0.1)
        outcomes: list[BaseException] = []

        async def acquire() -> None:
            try:
                await h.live.acquire("s1", load)
            except SessionGone as gone:
                outcomes.append(gone)

        async with anyio.create_task_group() as tg:
            for _ in range(5):
                tg.start_soon(acquire)
        assert calls == [1] and len(outcomes) == 5
        assert len(h.live) == 0 and h.live.get("s1") is None
        assert h.watched["s1"] == 0
        with pytest.raises(SessionGone):
            await h.live.acquire("s1", load)
        assert calls == [2]  # a failed build is not remembered: the next request loads again


async def test_a_load_failure_reaches_every_waiter_and_leaves_nothing_behind() -> None:
    async with running() as h:
        load, calls = loader(BackendUnavailable("store away"), delay=0.1)
        outcomes: list[BaseException] = []

        async def acquire() -> None:
            try:
                await h.live.acquire("s1", load)
            except BackendUnavailable as error:
                outcomes.append(error)

        async with anyio.create_task_group() as tg:
            for _ in range(4):
                tg.start_soon(acquire)
        assert calls == [1] and len(outcomes) == 4
        assert len(h.live) == 0
        load, _ = loader(record("s1"))
        live = await h.live.acquire("s1", load)  # the store is back: the session is built
        h.live.release(live)
        assert h.live.get("s1") is live


async def test_nothing_is_built_while_not_running() -> None:
    async with running() as h:
        h.live.bind(None)
        load, _ = loader(record("s1"))
        with pytest.raises(RuntimeError):
            await h.live.acquire("s1", load)
        assert len(h.live) == 0


# A session rebuilt from its record


async def test_a_session_rebuilt_from_its_record_serves_requests_without_a_handshake() -> None:
    async with running() as h:
        load, _ = loader(record("s1", owner="alice"))
        live = await h.live.acquire("s1", load)
        try:
            assert live.owner == "alice"
            assert live.connection is not None and live.connection.initialized.is_set()
            assert live.connection.protocol_version == PROTOCOL
            assert live.connection.client_params == CLIENT_PARAMS
            status, answer = await call(live, {"jsonrpc": "2.0", "id": 1, "method": "tools/list"})
            assert status == 200 and answer["result"]["tools"][0]["name"] == "noop"
        finally:
            h.live.release(live)


async def test_what_a_session_sends_outside_any_request_is_recorded_for_its_get_stream() -> None:
    async with running() as h:
        load, _ = loader(record("s1"))
        live = await h.live.acquire("s1", load)
        try:
            assert live.connection is not None
            await live.connection.send_tool_list_changed()
            with anyio.fail_after(5):
                while not h.events.recorded:
                    await anyio.sleep(0.01)
        finally:
            h.live.release(live)
        [(session_id, stream, payload)] = h.events.recorded
        assert (session_id, stream) == ("s1", GET_STREAM)
        assert json.loads(payload)["method"] == "notifications/tools/list_changed"


# In-flight holds and idle release


async def test_a_session_with_a_request_in_flight_is_never_released() -> None:
    async with running(idle_seconds=0.05) as h:
        load, _ = loader(record("s1"))
        live = await h.live.acquire("s1", load)
        await anyio.sleep(0.5)  # ten idle periods
        assert h.live.get("s1") is live and not live.ended
        h.live.release(live)
        await ended(live)
        assert h.live.get("s1") is None and len(h.live) == 0
        assert h.watched["s1"] == 0 and h.counts[-1] == 0


async def test_an_idle_session_is_released_after_idle_seconds_not_before() -> None:
    idle = 1.0
    async with running(idle_seconds=idle) as h:
        load, _ = loader(record("s1"))
        live = await h.live.acquire("s1", load)
        h.live.release(live)
        released_at = time.monotonic()
        await anyio.sleep(idle / 5)
        assert h.live.get("s1") is live
        await ended(live)
        assert time.monotonic() - released_at >= idle * 0.9
        assert h.live.get("s1") is None


async def test_each_request_restarts_the_idle_clock() -> None:
    idle = 0.6
    async with running(idle_seconds=idle) as h:
        load, calls = loader(record("s1"))
        first = await h.live.acquire("s1", load)
        h.live.release(first)
        for _ in range(4):  # a request every half idle period, for twice the idle period
            await anyio.sleep(idle / 2)
            live = await h.live.acquire("s1", load)
            h.live.release(live)
            if live is not first:
                break
        assert live is first and calls == [1], "released while requests kept coming"
        await ended(first)


async def test_a_released_session_is_built_again_on_its_next_request() -> None:
    async with running(idle_seconds=0.05) as h:
        load, calls = loader(record("s1"))
        first = await h.live.acquire("s1", load)
        h.live.release(first)
        await ended(first)
        second = await h.live.acquire("s1", load)
        h.live.release(second)
        assert second is not first and calls == [2]


# Retirement


async def test_retire_while_in_flight_leaves_the_registry_at_once_and_ends_on_the_last_release() -> None:
    async with running() as h:
        load, calls = loader(record("s1"))
        live = await h.live.acquire("s1", load)
        same = await h.live.acquire("s1", load)
        h.live.retire("s1")
        assert h.live.get("s1") is None and len(h.live) == 0 and h.counts[-1] == 0
        assert live.retired
        replacement = await h.live.acquire("s1", load)  # the next request builds a new live session
        assert replacement is not live and calls == [2]
        await anyio.sleep(0.1)
        assert not live.ended  # two requests still in it
        h.live.release(live)
        await anyio.sleep(0.1)
        assert not live.ended
        h.live.release(same)
        await ended(live)
        assert h.live.get("s1") is replacement  # the old one's end does not remove the new one
        assert not replacement.ended
        h.live.release(replacement)


async def test_retire_with_nothing_in_flight_ends_at_once() -> None:
    async with running() as h:
        load, _ = loader(record("s1"))
        live = await h.live.acquire("s1", load)
        h.live.release(live)
        h.live.retire("s1")
        assert h.live.get("s1") is None
        await ended(live, within=2)
        with anyio.fail_after(2):
            while h.watched["s1"]:
                await anyio.sleep(0.01)


async def test_retire_of_a_session_not_live_here_does_nothing() -> None:
    async with running() as h:
        h.live.retire("never-seen")
        assert len(h.live) == 0 and h.counts == []


# Accounting


async def test_open_release_retire_keep_count() -> None:
    async with running() as h:
        a = await h.live.open("a", "alice")
        b = await h.live.open("b", None)
        assert len(h.live) == 2 and h.counts == [1, 2]
        assert (a.owner, b.owner) == ("alice", None)
        assert a.in_flight == b.in_flight == 1
        assert a.connection is not None and not a.connection.initialized.is_set()  # its initialize comes next
        h.live.release(a)
        h.live.release(b)
        assert len(h.live) == 2 and {s.session_id for s in h.live.sessions()} == {"a", "b"}
        h.live.retire("a")
        h.live.retire("a")
        assert len(h.live) == 1 and h.counts == [1, 2, 1]
        load, calls = loader(None)
        assert await h.live.acquire("b", load) is b and calls == [0]  # live here: no load
        h.live.release(b)
        h.live.retire("b")
        assert len(h.live) == 0 and h.counts == [1, 2, 1, 0]
        await ended(a)
        await ended(b)


# Server-to-client request ids


async def test_each_live_session_asks_with_ids_of_its_own_block() -> None:
    async with running() as h:
        a = await h.live.open("a", None)
        b = await h.live.open("b", None)
        block = 1 << BLOCK_BITS
        assert abs(a.id_base - b.id_base) >= block
        for mine, other in ((a, b), (b, a)):
            assert mine.asked_here(mine.id_base + 1) and mine.asked_here(mine.id_base + block - 1)
            assert not mine.asked_here(mine.id_base) and not mine.asked_here(mine.id_base + block)
            assert not mine.asked_here(other.id_base + 1)
            assert not mine.asked_here(str(mine.id_base + 1)) and not mine.asked_here(None)
            assert mine.id_base + block < 2**53  # exact in a JSON number everywhere
        h.live.release(a)
        h.live.release(b)


async def test_this_process_knows_its_own_ids_from_another_replicas() -> None:
    async with running() as here, running() as there:
        a = await here.live.open("a", None)
        b = await there.live.open("b", None)
        assert a.id_base >> PREFIX_SHIFT != b.id_base >> PREFIX_SHIFT  # (a one in a million clash fails this)
        assert here.live.asked_here(a.id_base + 1) and here.live.asked_here(a.id_base + (1 << BLOCK_BITS) * 3)
        assert not here.live.asked_here(b.id_base + 1)
        assert there.live.asked_here(b.id_base + 1)
        assert not here.live.asked_here(True) and not here.live.asked_here(str(a.id_base + 1))
        here.live.release(a)
        there.live.release(b)
