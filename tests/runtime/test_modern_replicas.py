"""Modern-era clients across replicas: shared requestState keys, change notifications, handle state.

Real redis-server, real mcp-runtime processes, the official client in the modern era; where a balancer is
used, every HTTP request goes to the next replica.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import anyio
import mcp_types as types
import pytest
from mcp import Client
from mcp.shared.exceptions import MCPError
from mcp.shared.subscriptions import ResourceUpdated

from tests.support.clients import balanced_client, mcp_client
from tests.support.procs import RuntimeProcess, spawn, wait_healthy
from tests.support.redis_server import RedisServer, replicas, start_redis

OLD_KEY = "old-request-state-key-" + "a" * 32
NEW_KEY = "new-request-state-key-" + "b" * 32


def env(server: RedisServer, keys: str = OLD_KEY) -> dict[str, str]:
    return {"MCP_SESSION_BACKEND": "redis", "MCP_REDIS_URL": server.url, "MCP_REQUEST_STATE_KEYS": keys}


async def test_ask_is_completed_by_a_retry_on_the_other_replica(tmp_path: Path, redis_server: RedisServer) -> None:
    with replicas(tmp_path, env(redis_server), count=2) as procs:
        client, balancer = balanced_client(procs, "modern")
        async with client:
            for n in range(3):  # two POSTs an ask: the first on one replica, the retry on the other
                result = await client.call_tool("ask", {"question": f"q{n}"})
                assert result.structured_content == {"result": f"answer to q{n}"}, result
        assert set(balancer.by_port) == {p.port for p in procs}


async def test_handle_state_across_replicas(tmp_path: Path, redis_server: RedisServer) -> None:
    with replicas(tmp_path, env(redis_server), count=2) as procs:
        client, _ = balanced_client(procs, "modern")
        async with client:
            handle = (await client.call_tool("counter_create", {})).structured_content["result"]  # type: ignore[index]
            for expected in range(1, 6):
                result = await client.call_tool("counter_increment", {"handle": handle, "by": 1})
                assert result.structured_content == {"result": expected}


async def test_a_listen_stream_hears_a_change_made_on_another_replica(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    with replicas(tmp_path, env(redis_server), count=2) as (a, b):
        async with mcp_client(a.url, "modern") as listener, mcp_client(b.url, "modern") as writer:
            async with listener.listen(resource_subscriptions=["demo://note"]) as subscription:
                await writer.call_tool("note_set", {"text": "changed on b"})
                with anyio.fail_after(10):
                    event = await subscription.__anext__()
                assert event == ResourceUpdated(uri="demo://note")
            read = await listener.read_resource("demo://note")
            assert read.contents[0].text == "changed on b"  # type: ignore[union-attr]


async def test_listen_recovers_after_a_redis_outage(tmp_path: Path) -> None:
    server = start_redis(tmp_path / "redis")
    try:
        with replicas(tmp_path, env(server), count=2) as (a, b):
            server.stop()
            await anyio.sleep(1.5)
            server.start()
            await anyio.sleep(2.0)  # the relay resubscribes by itself
            async with (
                mcp_client(a.url, "modern") as listener,
                mcp_client(b.url, "modern") as writer,
                listener.listen(resource_subscriptions=["demo://note"]) as subscription,
            ):
                await writer.call_tool("note_set", {"text": "after the outage"})
                with anyio.fail_after(10):
                    assert await subscription.__anext__() == ResourceUpdated(uri="demo://note")
    finally:
        server.stop()


async def first_round(client: Client, question: str) -> types.InputRequiredResult:
    result = await client.session.call_tool("ask", {"question": question}, allow_input_required=True)
    assert isinstance(result, types.InputRequiredResult), result
    assert result.request_state
    return result


def answers(first: types.InputRequiredResult, text: str) -> dict[str, Any]:
    assert first.input_requests
    return {key: types.ElicitResult(action="accept", content={"answer": text}) for key in first.input_requests}


async def retry(client: Client, first: types.InputRequiredResult, text: str, state: str | None = None) -> Any:
    return await client.session.call_tool(
        "ask",
        {"question": "rotation"},
        input_responses=answers(first, text),
        request_state=state if state is not None else first.request_state,
    )


async def test_key_rotation_old_key_opens_new_key_seals(tmp_path: Path, redis_server: RedisServer) -> None:
    procs: list[RuntimeProcess] = [
        spawn(tmp_path, env(redis_server, OLD_KEY)),  # before the rotation
        spawn(tmp_path, env(redis_server, f"{NEW_KEY},{OLD_KEY}")),  # during: new seals, both open
        spawn(tmp_path, env(redis_server, NEW_KEY)),  # after
    ]
    try:
        for proc in procs:
            wait_healthy(proc)
        old, rotating, new = procs
        async with (
            mcp_client(old.url, "modern") as c_old,
            mcp_client(rotating.url, "modern") as c_rot,
            mcp_client(new.url, "modern") as c_new,
        ):
            sealed_old = await first_round(c_old, "rotation")
            done = await retry(c_rot, sealed_old, "opened with the old key")
            assert done.structured_content == {"result": "opened with the old key"}

            sealed_new = await first_round(c_rot, "rotation")
            done = await retry(c_new, sealed_new, "opened with the new key")
            assert done.structured_content == {"result": "opened with the new key"}
            with pytest.raises(MCPError):  # sealed with the new key: a replica with only the old one refuses it
                await retry(c_old, sealed_new, "nope")
    finally:
        for proc in procs:
            proc.stop()


async def test_a_tampered_request_state_is_refused(tmp_path: Path, redis_server: RedisServer) -> None:
    with replicas(tmp_path, env(redis_server), count=2) as (a, b):
        async with mcp_client(a.url, "modern") as c_a, mcp_client(b.url, "modern") as c_b:
            first = await first_round(c_a, "tamper")
            state = first.request_state
            assert state
            flipped = state[:-6] + ("A" if state[-6] != "A" else "B") + state[-5:]
            with pytest.raises(MCPError) as refused:
                await retry(c_b, first, "x", state=flipped)
            assert refused.value.error.code in (-32602, -32603)
            assert "state" in refused.value.error.message.lower()
            assert a.alive() and b.alive()


def test_several_replicas_without_shared_keys_is_a_startup_error(tmp_path: Path, redis_server: RedisServer) -> None:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("MCP_")}
    environment |= {"MCP_SESSION_BACKEND": "redis", "MCP_REDIS_URL": redis_server.url}
    done = subprocess.run(
        [sys.executable, "-m", "mcp_runtime.cli", "serve", "--app", "mcp_runtime.examples.demo:app", "--port", "1"],
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert "MCP_REQUEST_STATE_KEYS" in done.stderr and "another replica" in done.stderr


async def test_list_results_carry_cache_hints(tmp_path: Path, redis_server: RedisServer) -> None:
    with replicas(tmp_path, env(redis_server), count=1) as (a,):
        async with mcp_client(a.url, "modern") as client:
            tools = await client.session.list_tools()
            assert tools.ttl_ms == 60_000 and tools.cache_scope == "public"
            read = await client.session.read_resource("demo://note")
            assert read.ttl_ms == 0 and read.cache_scope == "private"
