"""The relay between replicas (`sessions/relay.py`) in this process: SSE messages, answers to
server-to-client requests, and the end of a session, through in-process events and through a real Redis.

Each replica is the real thing minus HTTP: a low-level `Server`, its `LiveSessions`, a `LocalStreamHub` and a
`Relay` over a `SessionEvents`.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import anyio
import mcp_types as types
import pytest
import redis.asyncio as aioredis
from mcp.server.lowlevel.server import Server

from mcp_runtime.backends import SessionRecord
from mcp_runtime.metrics import RuntimeMetrics
from mcp_runtime.redis_store.events import RedisEvents
from mcp_runtime.redis_store.keys import RedisKeys
from mcp_runtime.sessions.event_ids import GET_STREAM, session_tag
from mcp_runtime.sessions.events import LocalEvents, SessionEvents
from mcp_runtime.sessions.live import LiveSession, LiveSessions
from mcp_runtime.sessions.relay import Relay
from mcp_runtime.sessions.streams import LocalStreamHub
from mcp_runtime.web.sse import Inbox
from tests.support.procs import free_port
from tests.support.redis_server import RedisServer

PROTOCOL = "2025-11-25"
SESSION = "relay-session"
PREFIX = "relaytest:"


def record(session_id: str = SESSION) -> SessionRecord:
    now = time.monotonic()
    params = types.InitializeRequestParams(
        protocol_version=PROTOCOL,
        capabilities=types.ClientCapabilities(),
        client_info=types.Implementation(name="relay-test", version="1"),
    ).model_dump_json(by_alias=True, exclude_none=True)
    return SessionRecord(session_id, "addr:1", None, now, now, PROTOCOL, params)


@dataclass
class Replica:
    events: SessionEvents
    hub: LocalStreamHub
    live: LiveSessions
    relay: Relay
    metrics: RuntimeMetrics

    async def acquire(self, session_id: str = SESSION) -> LiveSession:
        async def load() -> SessionRecord:
            return record(session_id)

        return await self.live.acquire(session_id, load)


@asynccontextmanager
async def replica(events: SessionEvents) -> AsyncIterator[Replica]:
    """One replica's session parts, wired as `compose.build_runtime` wires them, running."""
    server: Server[Any] = Server("relay-test")
    metrics = RuntimeMetrics()
    hub = LocalStreamHub()
    live = LiveSessions(server, events, json_response=True, idle_seconds=60, runner="relay-test")
    relay = Relay(events, hub, live, metrics, replica="replica-a")
    async with server.lifespan(server) as state, anyio.create_task_group() as tg:
        live.bind(tg, state)
        await tg.start(relay.run)
        try:
            yield Replica(events, hub, live, relay, metrics)
        finally:
            tg.cancel_scope.cancel()
            live.bind(None)


def unreachable_events() -> RedisEvents:
    """Session events over a Redis that is not there (nothing listens on the port)."""
    client = aioredis.Redis(host="127.0.0.1", port=free_port(), socket_connect_timeout=0.5, decode_responses=True)
    return RedisEvents(client, key_prefix=PREFIX, log_length=100, log_ttl=60, retention=60, timeout=1.0)


async def next_message(stream: Inbox) -> tuple[str | None, Any]:
    with anyio.fail_after(5):
        delivery = await stream.receive()
    return delivery.event_id, json.loads(delivery.message)


async def ended(live: LiveSession) -> None:
    with anyio.fail_after(5):
        while not live.ended:
            await anyio.sleep(0.01)


# In one process (the memory backend's LocalEvents)


async def test_a_standalone_message_reaches_the_sessions_get_stream() -> None:
    async with replica(LocalEvents()) as r:
        live = await r.acquire()
        try:
            with r.hub.subscribe(SESSION) as stream:
                await r.events.watch(SESSION, messages=True)  # as the router does for a stream it holds
                assert live.connection is not None
                await live.connection.send_resource_updated("demo://note")
                event_id, message = await next_message(stream)
            assert event_id is not None and event_id.endswith(session_tag(SESSION))  # kept, for Last-Event-ID
            assert message["method"] == "notifications/resources/updated"
            assert message["params"]["uri"] == "demo://note"
        finally:
            r.live.release(live)


async def test_a_standalone_message_with_no_get_stream_here_is_dropped_quietly() -> None:
    async with replica(LocalEvents()) as r:
        live = await r.acquire()
        try:
            assert live.connection is not None
            await live.connection.send_tool_list_changed()
            await anyio.sleep(0.1)
            with r.hub.subscribe(SESSION) as stream:  # subscribed afterwards: it is not delivered live (only replayed)
                await r.events.watch(SESSION, messages=True)  # as the router does for a stream it holds
                with anyio.move_on_after(0.2):
                    await stream.receive()
                    pytest.fail("a message sent before the GET stream existed was delivered")
        finally:
            r.live.release(live)


async def test_an_ended_event_drops_the_live_session_and_closes_the_get_stream() -> None:
    async with replica(LocalEvents()) as r:
        live = await r.acquire()
        r.live.release(live)
        with r.hub.subscribe(SESSION) as stream:
            await r.events.send(SESSION, {"t": "ended"})
            assert r.live.get(SESSION) is None and not r.hub.holds(SESSION)
            with anyio.fail_after(5), pytest.raises(anyio.EndOfStream):
                await stream.receive()
        await ended(live)


async def test_end_drops_what_this_replica_holds() -> None:
    async with replica(LocalEvents()) as r:
        live = await r.acquire()
        r.live.release(live)
        with r.hub.subscribe(SESSION) as stream:
            await r.relay.end(SESSION)
            assert r.live.get(SESSION) is None and not r.hub.holds(SESSION)
            with anyio.fail_after(5), pytest.raises(anyio.EndOfStream):
                await stream.receive()
        await ended(live)


async def test_end_still_drops_locally_when_the_store_is_away(caplog: pytest.LogCaptureFixture) -> None:
    async with replica(LocalEvents()) as r:
        live = await r.acquire()
        r.live.release(live)
        away = Relay(unreachable_events(), r.hub, r.live, r.metrics, replica="replica-a")
        with r.hub.subscribe(SESSION), caplog.at_level(logging.WARNING, logger="mcp_runtime.sessions.relay"):
            await away.end(SESSION)  # does not raise
            assert r.live.get(SESSION) is None and not r.hub.holds(SESSION)
        assert "end not announced" in caplog.text
        await ended(live)


async def test_an_answer_reaches_the_request_that_asked_and_nothing_else_does() -> None:
    async with replica(LocalEvents()) as r:
        live = await r.acquire()
        connection = live.connection
        assert connection is not None
        try:
            with r.hub.subscribe(SESSION) as stream:
                await r.events.watch(SESSION, messages=True)  # as the router does for a stream it holds
                async with anyio.create_task_group() as tg:
                    answered = anyio.Event()

                    async def ping() -> None:
                        await connection.ping()
                        answered.set()

                    tg.start_soon(ping)
                    _, request = await next_message(stream)  # the ping goes out on the GET stream
                    assert request["method"] == "ping" and live.asked_here(request["id"])

                    ignored: list[dict[str, Any]] = [
                        {"t": "answer", "m": json.dumps({"jsonrpc": "2.0", "id": 7, "result": {}})},  # not asked here
                        {"t": "answer", "m": json.dumps({"jsonrpc": "2.0", "id": "x", "result": {}})},
                        {"t": "answer", "m": "not json"},
                        {"t": "answer", "m": json.dumps({"id": request["id"], "result": {}})},  # not JSON-RPC
                        {"t": "answer", "m": 5},
                        {"t": "answer"},
                        {"t": "no-such-kind"},
                        {},
                    ]
                    for event in ignored:
                        await r.events.send(SESSION, event)  # each is ignored without raising
                    await anyio.sleep(0.2)
                    assert not answered.is_set()

                    answer = types.JSONRPCResponse(jsonrpc="2.0", id=request["id"], result={})
                    await r.relay.forward_answer(SESSION, answer)
                    with anyio.fail_after(5):
                        await answered.wait()
            assert r.metrics.registry.get_sample_value("mcp_runtime_answers_forwarded_total") == 1
        finally:
            r.live.release(live)


async def test_an_answer_for_a_session_not_live_here_is_ignored() -> None:
    async with replica(LocalEvents()) as r:
        await r.events.watch("elsewhere")
        answer = json.dumps({"jsonrpc": "2.0", "id": 1, "result": {}})
        await r.events.send("elsewhere", {"t": "answer", "m": answer})
        await r.events.send("elsewhere", {"t": "message", "id": None, "m": "{}"})  # no GET stream here either
        assert len(r.live) == 0


# Across replicas (Redis pub/sub)


def redis_events(server: RedisServer) -> RedisEvents:
    client = aioredis.Redis.from_url(server.url, decode_responses=True)
    return RedisEvents(client, key_prefix=PREFIX, log_length=100, log_ttl=60, retention=60, timeout=2.0)


async def subscribed(server: RedisServer, session_id: str, replicas: int) -> None:
    """Until `replicas` replicas listen to the session's channel (a publish before that would be missed)."""
    channel = RedisKeys(PREFIX).channel(session_id)
    client = aioredis.Redis.from_url(server.url, decode_responses=True)
    try:
        with anyio.fail_after(5):
            while dict(await client.pubsub_numsub(channel)).get(channel, 0) < replicas:
                await anyio.sleep(0.02)
    finally:
        await client.aclose()


async def test_across_replicas_messages_answers_and_the_end_go_through_redis(redis_server: RedisServer) -> None:
    async with replica(redis_events(redis_server)) as a, replica(redis_events(redis_server)) as b:
        live = await a.acquire()  # the live session is on replica a
        connection = live.connection
        assert connection is not None
        try:
            with b.hub.subscribe(SESSION) as stream:  # the GET stream is on replica b
                await b.events.watch(SESSION, messages=True)
                await subscribed(redis_server, SESSION, replicas=2)

                await connection.send_resource_updated("demo://note")
                event_id, message = await next_message(stream)
                assert event_id  # kept in Redis, for Last-Event-ID on any replica
                assert message["params"]["uri"] == "demo://note"
                [kept] = await b.events.replay(SESSION, GET_STREAM, None)
                assert (kept.entry, kept.stream, kept.final) == (event_id.split(".")[0], GET_STREAM, False)
                assert json.loads(kept.message) == message

                async with anyio.create_task_group() as tg:
                    answered = anyio.Event()

                    async def ping() -> None:
                        await connection.ping()
                        answered.set()

                    tg.start_soon(ping)
                    _, request = await next_message(stream)
                    assert request["method"] == "ping"
                    assert a.live.asked_here(request["id"]) and not b.live.asked_here(request["id"])
                    answer = types.JSONRPCResponse(jsonrpc="2.0", id=request["id"], result={})
                    await b.relay.forward_answer(SESSION, answer)  # the answer was POSTed to replica b
                    with anyio.fail_after(5):
                        await answered.wait()

                await b.relay.end(SESSION)  # DELETE on replica b
                with anyio.fail_after(5):
                    while a.live.get(SESSION) is not None:
                        await anyio.sleep(0.01)
                assert not b.hub.holds(SESSION)
        finally:
            a.live.release(live)
        await ended(live)
        await b.events.unwatch(SESSION, messages=True)
