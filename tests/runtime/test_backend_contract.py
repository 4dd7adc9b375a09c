"""The session backend contract (`backends/base.py`), run against every backend: memory, and redis on a real
redis-server. What one backend does, the other must do too, so that a server behaves the same on either."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path

import anyio
import pytest
import redis.asyncio as aioredis

from mcp_runtime.backends import HandleError, SessionBackend, SessionLimitReached, SessionNotFound, SessionRecord
from mcp_runtime.backends.memory import MemoryBackend
from mcp_runtime.redis_store.backend import RedisBackend
from tests.support.redis_server import RedisServer, start_redis

BACKENDS = ["memory", "redis"]
MakeBackend = Callable[..., Awaitable[SessionBackend]]


@pytest.fixture(scope="module")
def shared_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """One redis-server for the module; each backend gets a key prefix of its own."""
    server = start_redis(Path(tmp_path_factory.mktemp("redis")))
    yield server
    server.stop()


@pytest.fixture(params=BACKENDS)
async def make_backend(request: pytest.FixtureRequest) -> AsyncIterator[MakeBackend]:
    """Build a started backend of the kind under test (closed after the test)."""
    made: list[SessionBackend] = []

    async def make(
        *,
        session_ttl: float = 60,
        max_sessions: int = 100,
        max_sessions_per_client: int = 100,
        on_expired: Callable[[int], None] = lambda _: None,
    ) -> SessionBackend:
        backend: SessionBackend
        if request.param == "memory":
            backend = MemoryBackend(
                session_ttl=session_ttl,
                max_sessions=max_sessions,
                max_sessions_per_client=max_sessions_per_client,
                on_expired=on_expired,
            )
        else:
            server: RedisServer = request.getfixturevalue("shared_redis")
            client = aioredis.Redis.from_url(server.url, decode_responses=True)
            backend = RedisBackend(
                client,
                key_prefix=f"t{uuid.uuid4().hex[:8]}:",
                session_ttl=session_ttl,
                max_sessions=max_sessions,
                max_sessions_per_client=max_sessions_per_client,
                timeout=5,
                on_expired=on_expired,
            )
        await backend.start()
        made.append(backend)
        return backend

    yield make
    for backend in made:
        await backend.close()


@pytest.fixture
async def backend(make_backend: MakeBackend) -> SessionBackend:
    return await make_backend()


def record(
    session_id: str, client: str = "addr:1", owner: str | None = None, protocol_version: str | None = "2025-11-25"
) -> SessionRecord:
    now = time.monotonic()
    params = '{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"c","version":"1"}}'
    return SessionRecord(session_id, client, owner, now, now, protocol_version=protocol_version, client_params=params)


# Sessions


async def test_ready_once_started(backend: SessionBackend) -> None:
    assert await backend.ready()
    assert backend.name in BACKENDS


async def test_an_admitted_session_reads_back_as_it_was_stored(backend: SessionBackend) -> None:
    stored = record("s1", client="addr:7", owner="alice")
    await backend.admit(stored)
    found = await backend.get("s1")
    assert found is not None
    assert (found.session_id, found.client_key, found.owner) == ("s1", "addr:7", "alice")
    assert (found.protocol_version, found.client_params) == (stored.protocol_version, stored.client_params)
    assert await backend.count() == 1


async def test_a_session_without_an_owner_reads_back_without_one(backend: SessionBackend) -> None:
    await backend.admit(record("s1", owner=None))
    found = await backend.get("s1")
    assert found is not None and found.owner is None


async def test_unknown_sessions_are_none_false_and_not_deleted(backend: SessionBackend) -> None:
    assert await backend.get("nope") is None
    assert not await backend.touch("nope")
    assert await backend.alive(["nope"]) == [False]
    assert await backend.alive([]) == []
    assert not await backend.delete("nope")
    assert await backend.count() == 0


async def test_delete_ends_a_session_and_frees_its_slots(make_backend: MakeBackend) -> None:
    backend = await make_backend(max_sessions=10, max_sessions_per_client=1)
    await backend.admit(record("s1"))
    await backend.state_set("s1", "k", 1)
    assert await backend.touch("s1")
    assert await backend.alive(["s1", "other"]) == [True, False]
    assert await backend.delete("s1")
    assert not await backend.delete("s1")
    assert await backend.get("s1") is None and not await backend.touch("s1")
    assert await backend.count() == 0
    with pytest.raises(SessionNotFound):
        await backend.state_get("s1", "k")
    await backend.admit(record("s2"))  # the client's one slot is free again
    assert await backend.sweep() == []  # a deleted session is not reported as expired


async def test_caps_per_server_and_per_client(make_backend: MakeBackend) -> None:
    backend = await make_backend(max_sessions=3, max_sessions_per_client=2)
    await backend.admit(record("a"))
    await backend.admit(record("b"))
    with pytest.raises(SessionLimitReached) as client_cap:
        await backend.admit(record("c"))
    assert (client_cap.value.scope, client_cap.value.limit) == ("client", 2)
    await backend.admit(record("c", client="addr:2"))
    with pytest.raises(SessionLimitReached) as server_cap:
        await backend.admit(record("d", client="addr:3"))
    assert (server_cap.value.scope, server_cap.value.limit) == ("server", 3)
    assert await backend.get("d") is None  # a refused session leaves nothing behind
    assert await backend.count() == 3
    assert await backend.delete("a")
    await backend.admit(record("d"))
    assert await backend.count() == 3


async def test_expiry_sweep_and_the_idle_clock(make_backend: MakeBackend) -> None:
    ttl = 2.0
    backend = await make_backend(session_ttl=ttl, max_sessions=2, max_sessions_per_client=2)
    await backend.admit(record("idle"))
    await backend.admit(record("used"))
    await backend.state_set("idle", "k", {"v": 1})
    await anyio.sleep(ttl / 2)
    assert await backend.touch("used")  # restarts its idle clock
    assert await backend.alive(["idle", "used"]) == [True, True]  # does not restart anything
    await anyio.sleep(ttl * 0.75)  # past the first expiry, well before the touched one's
    assert await backend.get("idle") is None
    assert not await backend.touch("idle")
    assert await backend.alive(["idle", "used"]) == [False, True]
    with pytest.raises(SessionNotFound):
        await backend.state_get("idle", "k")
    assert await backend.count() == 1  # an expired session holds no slot, even before the sweep
    await backend.admit(record("new"))  # the server cap has room again
    assert await backend.sweep() == ["idle"]
    assert await backend.sweep() == []  # each expiry is reported once
    assert await backend.get("used") is not None


# Session state


async def test_state_set_get_increment_delete(backend: SessionBackend) -> None:
    await backend.admit(record("a"))
    await backend.admit(record("b", client="addr:2"))
    assert await backend.state_get("a", "missing") is None
    value = {"list": [1, "two", None, True, 3.5], "nested": {"x": "y"}}
    await backend.state_set("a", "obj", value)
    value["list"].append("changed")  # type: ignore[attr-defined]  # the stored value does not change with it
    assert await backend.state_get("a", "obj") == {"list": [1, "two", None, True, 3.5], "nested": {"x": "y"}}
    assert await backend.state_increment("a", "n", 2) == 2
    assert await backend.state_increment("a", "n", -5) == -3
    assert await backend.state_get("a", "n") == -3
    assert await backend.state_get("b", "n") is None  # each session has its own state
    await backend.state_delete("a", "obj")
    await backend.state_delete("a", "never-set")
    assert await backend.state_get("a", "obj") is None


@pytest.mark.parametrize("operation", ["get", "set", "increment"])
async def test_state_of_an_unknown_session_is_session_not_found(backend: SessionBackend, operation: str) -> None:
    calls: dict[str, Callable[[], Awaitable[object]]] = {
        "get": lambda: backend.state_get("nope", "k"),
        "set": lambda: backend.state_set("nope", "k", 1),
        "increment": lambda: backend.state_increment("nope", "k", 1),
    }
    with pytest.raises(SessionNotFound):
        await calls[operation]()
    assert await backend.count() == 0  # and it does not create the session


async def test_state_delete_of_an_unknown_session_is_session_not_found(backend: SessionBackend) -> None:
    with pytest.raises(SessionNotFound):
        await backend.state_delete("nope", "k")


# App state and key-value state


async def test_shared_state(backend: SessionBackend) -> None:
    assert await backend.shared_get("k") is None
    await backend.shared_set("k", {"a": [1, 2]})
    assert await backend.shared_get("k") == {"a": [1, 2]}
    await backend.shared_set("k", 3)
    assert await backend.shared_get("k") == 3


async def test_key_value_state_with_and_without_ttl(backend: SessionBackend) -> None:
    assert await backend.kv_get("k") is None
    await backend.kv_put("k", {"v": 1}, None)
    await backend.kv_put("short", "gone soon", 0.2)
    assert await backend.kv_get("k") == {"v": 1} and await backend.kv_get("short") == "gone soon"
    await anyio.sleep(0.4)
    assert await backend.kv_get("short") is None
    assert await backend.kv_get("k") == {"v": 1}
    assert await backend.kv_delete("k")
    assert not await backend.kv_delete("k")
    assert await backend.kv_get("k") is None


# Handles


async def test_handle_create_get_increment_set_delete(backend: SessionBackend) -> None:
    await backend.handle_create("h1", "alice", {"count": 0, "label": "x"}, ttl=60)
    assert await backend.handle_get("h1", "alice") == {"count": 0, "label": "x"}
    assert await backend.handle_increment("h1", "alice", "count", 4) == 4
    assert await backend.handle_increment("h1", "alice", "fresh", 2) == 2  # unset counts from 0
    assert await backend.handle_get("h1", "alice") == {"count": 4, "label": "x", "fresh": 2}
    await backend.handle_set("h1", "alice", {"only": [1]})  # replaces the data whole
    assert await backend.handle_get("h1", "alice") == {"only": [1]}
    await backend.handle_delete("h1", "alice")
    with pytest.raises(HandleError):
        await backend.handle_get("h1", "alice")
    with pytest.raises(HandleError):
        await backend.handle_delete("h1", "alice")


async def test_a_handle_without_an_owner_is_only_for_no_owner(backend: SessionBackend) -> None:
    await backend.handle_create("h1", None, {"n": 1}, ttl=60)
    assert await backend.handle_get("h1", None) == {"n": 1}
    with pytest.raises(HandleError):
        await backend.handle_get("h1", "alice")


@pytest.mark.parametrize("operation", ["get", "increment", "set", "delete"])
async def test_another_owner_gets_handle_error_and_changes_nothing(backend: SessionBackend, operation: str) -> None:
    await backend.handle_create("h1", "alice", {"count": 1}, ttl=60)
    calls: dict[str, Callable[[str | None], Awaitable[object]]] = {
        "get": lambda owner: backend.handle_get("h1", owner),
        "increment": lambda owner: backend.handle_increment("h1", owner, "count", 1),
        "set": lambda owner: backend.handle_set("h1", owner, {"count": 99}),
        "delete": lambda owner: backend.handle_delete("h1", owner),
    }
    for stranger in ("bob", None):
        with pytest.raises(HandleError):
            await calls[operation](stranger)
    assert await backend.handle_get("h1", "alice") == {"count": 1}


@pytest.mark.parametrize("operation", ["get", "increment", "set", "delete"])
async def test_an_unknown_handle_is_handle_error(backend: SessionBackend, operation: str) -> None:
    calls: dict[str, Callable[[], Awaitable[object]]] = {
        "get": lambda: backend.handle_get("nope", "alice"),
        "increment": lambda: backend.handle_increment("nope", "alice", "count", 1),
        "set": lambda: backend.handle_set("nope", "alice", {"count": 1}),
        "delete": lambda: backend.handle_delete("nope", "alice"),
    }
    with pytest.raises(HandleError):
        await calls[operation]()
    with pytest.raises(HandleError):  # and it did not create one
        await backend.handle_get("nope", "alice")


async def test_incrementing_what_is_not_an_integer_is_a_value_error(backend: SessionBackend) -> None:
    await backend.handle_create("h1", "alice", {"label": "text"}, ttl=60)
    with pytest.raises(ValueError):
        await backend.handle_increment("h1", "alice", "label", 1)
    assert await backend.handle_get("h1", "alice") == {"label": "text"}


async def test_a_handle_expires_after_its_ttl_of_disuse(backend: SessionBackend) -> None:
    ttl = 2.0
    await backend.handle_create("used", "alice", {"n": 0}, ttl=ttl)
    await backend.handle_create("idle", "alice", {"n": 0}, ttl=ttl)
    await anyio.sleep(ttl / 2)
    assert await backend.handle_increment("used", "alice", "n", 1) == 1  # use restarts its clock
    await anyio.sleep(ttl * 0.75)  # past the idle one's expiry, well before the used one's
    with pytest.raises(HandleError):
        await backend.handle_get("idle", "alice")
    assert await backend.handle_get("used", "alice") == {"n": 1}
    await backend.sweep()
    with pytest.raises(HandleError):
        await backend.handle_get("idle", "alice")


async def test_every_expiry_is_counted_once_whichever_path_removes_it(make_backend: MakeBackend) -> None:
    counted: list[int] = []
    ttl = 0.3
    backend = await make_backend(session_ttl=ttl, max_sessions=2, on_expired=counted.append)
    await backend.admit(record("a"))
    await backend.admit(record("b", client="addr:2"))
    await anyio.sleep(ttl * 1.5)
    await backend.admit(record("c", client="addr:3"))  # the cap of two: room only because a and b expired
    await backend.sweep()
    await backend.sweep()
    assert sum(counted) == 2, counted
