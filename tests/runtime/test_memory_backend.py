"""The memory backend on its own (pure in-process data structures)."""

from __future__ import annotations

import time

import anyio
import pytest

from mcp_runtime.backends import HandleError, SessionLimitReached, SessionNotFound, SessionRecord
from mcp_runtime.backends.memory import MemoryBackend


def record(sid: str, client: str = "addr:1", owner: str | None = None) -> SessionRecord:
    now = time.monotonic()
    return SessionRecord(sid, client, owner, now, now)


async def test_caps() -> None:
    backend = MemoryBackend(session_ttl=60, max_sessions=3, max_sessions_per_client=2)
    await backend.admit(record("a"))
    await backend.admit(record("b"))
    with pytest.raises(SessionLimitReached) as client_cap:
        await backend.admit(record("c"))
    assert client_cap.value.scope == "client"
    await backend.admit(record("c", client="addr:2"))
    with pytest.raises(SessionLimitReached) as server_cap:
        await backend.admit(record("d", client="addr:3"))
    assert server_cap.value.scope == "server"
    assert await backend.delete("a")
    await backend.admit(record("d"))
    assert await backend.count() == 3


async def test_expiry_and_sweep() -> None:
    backend = MemoryBackend(session_ttl=0.05, max_sessions=10, max_sessions_per_client=1)
    await backend.admit(record("a"))
    await backend.state_set("a", "k", {"v": 1})
    assert await backend.state_get("a", "k") == {"v": 1}
    await anyio.sleep(0.1)
    assert await backend.get("a") is None
    with pytest.raises(SessionNotFound):
        await backend.state_get("a", "k")
    assert await backend.sweep() == ["a"]
    await backend.admit(record("b"))  # the client's slot was released


async def test_state_increment_and_isolation() -> None:
    backend = MemoryBackend(session_ttl=60, max_sessions=10, max_sessions_per_client=10)
    await backend.admit(record("a"))
    await backend.admit(record("b"))
    assert await backend.state_increment("a", "n", 2) == 2
    assert await backend.state_increment("a", "n", 3) == 5
    assert await backend.state_get("b", "n") is None
    value = {"list": [1]}
    await backend.state_set("a", "obj", value)
    value["list"].append(2)  # the stored copy does not change
    assert await backend.state_get("a", "obj") == {"list": [1]}


async def test_handles_ttl_and_owner() -> None:
    backend = MemoryBackend(session_ttl=60, max_sessions=10, max_sessions_per_client=10)
    await backend.handle_create("h1", "alice", {"count": 0}, ttl=0.1)
    assert await backend.handle_increment("h1", "alice", "count", 4) == 4
    with pytest.raises(HandleError):
        await backend.handle_get("h1", "bob")
    with pytest.raises(HandleError):
        await backend.handle_get("h1", None)
    await anyio.sleep(0.15)
    with pytest.raises(HandleError):
        await backend.handle_get("h1", "alice")
    await backend.sweep()
    assert not backend._handles
