"""The pure parts of resumable streams: event ids and stream tokens (fuzzed), the in-memory event log's bounds,
the transport's event store (what it keeps, when a run is answered, closing silent or draining streams), and a
resumed stream's catch-up from the log."""

from __future__ import annotations

import contextlib
import json

import anyio
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from mcp.server.streamable_http import GET_STREAM_KEY
from mcp_types import JSONRPCNotification, JSONRPCResponse
from starlette.types import Message

from mcp_runtime.sessions.event_ids import (
    GET_STREAM,
    PostStream,
    entry_event_id,
    parse_event_id,
    parse_stream,
    priming_event_id,
    session_tag,
)
from mcp_runtime.sessions.event_store import SessionEventStore
from mcp_runtime.sessions.events import LocalEvents
from mcp_runtime.sessions.streams import MAX_STREAMS_PER_SESSION, LocalStreamHub, StreamBusy
from mcp_runtime.web.sse import Delivery, Inbox, serve_sse

request_ids = st.one_of(st.integers(min_value=-(2**53), max_value=2**53), st.text(max_size=60))
replicas = st.text(min_size=1, max_size=60)
sessions = st.text(alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1, max_size=64)


@given(replicas, request_ids, sessions, st.integers(min_value=0, max_value=2**45))
def test_a_priming_id_names_its_stream_and_session(replica: str, request_id: int | str, session: str, t: int) -> None:
    post = PostStream.new(replica, request_id)
    event_id = priming_event_id(post.token, t, session)
    assert "\n" not in event_id and "\r" not in event_id
    cursor = parse_event_id(event_id)
    assert cursor is not None and cursor.kind == "priming" and cursor.millis == t
    assert cursor.of_session(session) and cursor.tag == session_tag(session)
    assert parse_stream(cursor.token) == post


@given(st.integers(min_value=0, max_value=2**45), st.integers(min_value=0, max_value=2**20), sessions, sessions)
def test_an_entry_id_belongs_to_one_session(millis: int, seq: int, session: str, other: str) -> None:
    cursor = parse_event_id(entry_event_id(f"{millis}-{seq}", session))
    assert cursor is not None and cursor.kind == "entry" and cursor.entry == f"{millis}-{seq}"
    assert cursor.of_session(session)
    assert cursor.of_session(other) == (session_tag(other) == session_tag(session))


@given(st.text(max_size=300))
def test_any_last_event_id_parses_or_is_refused_without_raising(value: str) -> None:
    cursor = parse_event_id(value)
    if cursor is not None:
        assert cursor.kind in ("entry", "priming")
        if cursor.kind == "priming":
            parse_stream(cursor.token)  # may be None (not one of ours), never raises


def test_an_untagged_id_from_an_older_replica_is_an_entry_of_any_session() -> None:
    cursor = parse_event_id("1700000000000-3")
    assert cursor is not None and cursor.entry == "1700000000000-3" and cursor.of_session("anything")


def test_the_get_stream_token_is_no_post_stream() -> None:
    assert parse_stream(GET_STREAM) is None
    assert parse_stream("abc~~") is None  # a request id that is not JSON


async def test_the_memory_log_keeps_streams_apart_and_within_its_length() -> None:
    log = LocalEvents(log_length=5, retention_seconds=60)
    entries = [await log.record("s", "g" if n % 2 else "t", f"m{n}", final=False) for n in range(8)]
    assert len(set(entries)) == 8
    kept_t = await log.replay("s", "t", None)
    assert [k.message for k in kept_t] == ["m4", "m6"]  # the last 5 are kept: m3..m7
    assert [k.message for k in await log.replay("s", "g", entries[3])] == ["m5", "m7"]
    assert await log.find("s", entries[0]) is None
    found = await log.find("s", entries[7])
    assert found is not None and found.stream == "g"
    await log.forget("s")
    assert await log.replay("s", "t", None) == []


async def test_the_memory_log_drops_what_is_past_its_retention() -> None:
    log = LocalEvents(log_length=100, retention_seconds=0.05)
    old = await log.record("s", "g", "old", final=False)
    await anyio.sleep(0.1)
    await log.record("s", "g", "new", final=False)
    assert await log.find("s", old) is None
    assert [k.message for k in await log.replay("s", "g", None)] == ["new"]


async def test_the_store_keeps_each_message_under_its_run_and_marks_the_answer() -> None:
    log = LocalEvents()
    store = SessionEventStore("s", log, "replica-a")
    run = store.expect("7", 7)
    priming = await store.store_event("7", None)
    cursor = parse_event_id(priming)
    assert cursor is not None and cursor.token == run.stream.token and run.primed
    progress = JSONRPCNotification(jsonrpc="2.0", method="notifications/progress", params={"progress": 1})
    first = await store.store_event("7", progress)
    assert not run.answered.is_set()
    answer = await store.store_event("7", JSONRPCResponse(jsonrpc="2.0", id=7, result={}))
    assert run.answered.is_set() and "7" not in store.runs
    kept = await log.replay("s", run.stream.token, None)
    assert [(entry_event_id(k.entry, "s"), k.final) for k in kept] == [(first, False), (answer, True)]
    assert json.loads(kept[1].message)["id"] == 7
    note = await store.store_event(GET_STREAM_KEY, progress)  # the GET stream's
    found = await log.find("s", note.split(".")[0])
    assert found is not None and found.stream == GET_STREAM


async def test_json_answers_keep_only_the_get_streams_messages() -> None:
    log = LocalEvents()
    store = SessionEventStore("s", log, "replica-a", post_streams=False)
    assert await store.store_event("7", JSONRPCResponse(jsonrpc="2.0", id=7, result={})) == ""
    note = JSONRPCNotification(jsonrpc="2.0", method="notifications/tools/list_changed")
    assert await store.store_event(GET_STREAM_KEY, note)
    assert [k.stream for k in await log.replay("s", GET_STREAM, None)] == [GET_STREAM]


async def test_a_silent_primed_stream_is_closed_and_a_drain_closes_the_rest() -> None:
    closed: list[str] = []
    store = SessionEventStore("s", LocalEvents(), "replica-a", idle_close_seconds=0.1)
    store.close_stream = closed.append
    quiet, unprimed, talking = store.expect("1", 1), store.expect("2", 2), store.expect("3", 3)
    await store.store_event("1", None)
    await store.store_event("3", None)
    for _ in range(4):
        await anyio.sleep(0.04)
        await store.store_event("3", JSONRPCNotification(jsonrpc="2.0", method="notifications/progress"))
    assert closed == ["1"] and quiet.detached and not talking.detached and not unprimed.detached
    assert store.detach_all() == 1 and closed == ["1", "3"]  # an unprimed stream cannot be resumed: left open
    store.ended()
    assert quiet.answered.is_set() and unprimed.answered.is_set() and store.runs == {}


@pytest.mark.parametrize("request_id", [0, -1, "0", "x~y", "ü"])
def test_the_request_id_round_trips_with_its_type(request_id: int | str) -> None:
    post = parse_stream(PostStream.new("r", request_id).token)
    assert post is not None and post.request_id == request_id and type(post.request_id) is type(request_id)


async def test_a_resumed_stream_catches_up_from_the_log_what_live_delivery_missed() -> None:
    """Nothing comes live; the log has the stream's events: each goes out once, in order, and the stream ends
    with the answer."""
    sent: list[bytes] = []
    asked: list[str | None] = []
    log = [
        Delivery("1-0.t", '{"n":1}', "1-0"),
        Delivery("2-0.t", '{"n":2}', "2-0"),
        Delivery("3-0.t", '{"id":7,"result":{}}', "3-0", final=True),
    ]

    async def catch_up(last_sent: str | None) -> list[Delivery]:
        asked.append(last_sent)
        return log[:2] if len(asked) == 1 else log  # the second read also holds what was already sent

    async def send(message: Message) -> None:
        if message["type"] == "http.response.body":
            sent.append(message["body"])

    async def receive() -> Message:
        await anyio.sleep_forever()
        raise AssertionError

    messages = Inbox(4)
    with anyio.fail_after(5):
        await serve_sse(
            messages, "s", 60, receive, send, [log[0]], until_answer=True, catch_up=catch_up, catch_up_seconds=0.05
        )
    body = b"".join(sent)
    assert [body.count(f"id: {n}-0.t".encode()) for n in (1, 2, 3)] == [1, 1, 1]
    assert body.index(b"id: 2-0.t") < body.index(b"id: 3-0.t") and sent[-1] == b""
    assert asked == ["1-0", "2-0"]


def test_a_session_holds_a_bounded_number_of_streams_here() -> None:
    hub = LocalStreamHub()
    with contextlib.ExitStack() as held:
        tokens = [PostStream.new("r", n).token for n in range(MAX_STREAMS_PER_SESSION)]
        for token in tokens:
            held.enter_context(hub.subscribe("s", token))
        with pytest.raises(StreamBusy), hub.subscribe("s", PostStream.new("r", 99).token):
            pass
        with hub.subscribe("s", tokens[0]):  # the same stream resumed again replaces the one held
            assert len(hub.resumed()) == MAX_STREAMS_PER_SESSION
        with hub.subscribe("other", GET_STREAM):  # other sessions are not affected
            pass
    assert hub.subscribed() == []


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from(["put", "get", "close"]), max_size=40), st.integers(min_value=1, max_value=5))
def test_an_inbox_behaves_as_a_bounded_fifo_that_ends_when_closed(ops: list[str], limit: int) -> None:
    """Against a model: what goes in comes out once, in order; a full inbox refuses, a closed one takes nothing
    and ends once drained; a receive with nothing in it waits its time and gives None."""

    async def run() -> None:
        inbox = Inbox(limit)
        model: list[int] = []
        closed = False
        for n, op in enumerate(ops):
            delivery = Delivery(None, str(n))
            if op == "put":
                if closed:
                    with pytest.raises(anyio.ClosedResourceError):
                        inbox.send_nowait(delivery)
                elif len(model) >= limit:
                    with pytest.raises(anyio.WouldBlock):
                        inbox.send_nowait(delivery)
                else:
                    inbox.send_nowait(delivery)
                    model.append(n)
            elif op == "get":
                if model:
                    got = await inbox.receive_within(0.01)
                    assert got is not None and got.message == str(model.pop(0))
                elif closed:
                    with pytest.raises(anyio.EndOfStream):
                        await inbox.receive_within(0.01)
                else:
                    assert await inbox.receive_within(0.01) is None
            else:
                inbox.close()
                closed = True

    anyio.run(run)


async def test_an_inbox_wakes_its_receiver_on_a_delivery_and_on_close() -> None:
    inbox = Inbox(4)
    async with anyio.create_task_group() as tg:
        got: list[Delivery] = []

        async def wait() -> None:
            got.append(await inbox.receive())

        tg.start_soon(wait)
        await anyio.sleep(0.05)
        inbox.send_nowait(Delivery(None, "x"))
    assert [d.message for d in got] == ["x"]
    with anyio.fail_after(2):
        async with anyio.create_task_group() as tg:

            async def ends() -> None:
                with pytest.raises(anyio.EndOfStream):
                    await inbox.receive()

            tg.start_soon(ends)
            await anyio.sleep(0.05)
            inbox.close()
