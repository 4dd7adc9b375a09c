"""Every app form `--app` accepts, served by two replicas on one Redis through a balancer with no affinity.

Forms: an MCPServer at a dotted attribute, a low-level Server, a factory returning one, a FastMCP 4.x app, an
object holding a FastMCP app, a factory returning a FastMCP app. A bad `--app` stops the process at start.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import anyio
import httpx2
import mcp_types as types
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from mcp_runtime.sdk.loading import AppLoadError, load_app
from tests.support.balancer import RoundRobin
from tests.support.clients import Era, client_mode
from tests.support.procs import RuntimeProcess, spawn, wait_healthy
from tests.support.redis_server import RedisServer, redis_env

FORMS = {
    "mcpserver-dotted": "tests.runtime.app_forms.holders:Holder.demo",
    "lowlevel": "tests.runtime.app_forms.lowlevel:server",
    "lowlevel-factory": "tests.runtime.app_forms.lowlevel:make_server",
    "fastmcp": "tests.runtime.app_forms.fastmcp_app:mcp",
    "fastmcp-holder": "tests.runtime.app_forms.fastmcp_app:Holder.app",
    "fastmcp-factory": "tests.runtime.app_forms.fastmcp_app:make_app",
}


def two_replicas(tmp_path: Path, redis_server: RedisServer, app: str) -> list[RuntimeProcess]:
    procs = [spawn(tmp_path, redis_env(redis_server, MCP_TRANSPORT_IDLE_SECONDS="0.5"), app=app) for _ in range(2)]
    for proc in procs:
        wait_healthy(proc)
    return procs


def balanced(procs: list[RuntimeProcess], era: Era, **kwargs: Any) -> tuple[Client, RoundRobin]:
    balancer = RoundRobin([p.port for p in procs])
    http = httpx2.AsyncClient(transport=balancer, timeout=30)
    transport = streamable_http_client(procs[0].url, http_client=http)
    return Client(transport, mode=client_mode(era), **kwargs), balancer  # type: ignore[arg-type]


def value(result: types.CallToolResult) -> Any:
    assert not result.is_error, result
    structured = result.structured_content
    assert structured is not None, result
    if "result" in structured:
        return structured["result"]
    return structured.get("replica", structured)  # the demo app's whoami answers a dict


@pytest.mark.parametrize("form", FORMS)
async def test_each_form_is_served_across_replicas(
    tmp_path: Path, redis_server: RedisServer, form: str, era: Era
) -> None:
    procs = two_replicas(tmp_path, redis_server, FORMS[form])
    try:
        client, balancer = balanced(procs, era)
        async with client:
            names = {tool.name for tool in (await client.list_tools()).tools}
            assert {"add", "whoami"} <= names
            replicas = {value(await client.call_tool("whoami", {})) for _ in range(4)}
            assert len(replicas) == 2, replicas  # both replicas served calls
            assert value(await client.call_tool("add", {"a": 2, "b": 40})) == 42
            if "counter_create" in names:  # handles: state for both eras, across replicas
                handle = value(await client.call_tool("counter_create", {}))
                counts = [value(await client.call_tool("counter_increment", {"handle": handle})) for _ in range(6)]
                assert counts == [1, 2, 3, 4, 5, 6]
        assert len(balancer.by_port) == 2
        for proc in procs:
            assert "Traceback" not in proc.log(), proc.log()[-3000:]
    finally:
        for proc in procs:
            proc.stop()


async def test_fastmcp_session_state_follows_the_session_and_ends_with_it(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    procs = two_replicas(tmp_path, redis_server, FORMS["fastmcp"])
    try:
        client, balancer = balanced(procs, "handshake")
        async with client:
            counts = [value(await client.call_tool("bump", {})) for _ in range(8)]
            assert counts == list(range(1, 9))  # one counter, whichever replica served
            keys = [k for k in redis_server.client().scan_iter("mcp:st:*")]
            assert len(keys) == 1  # kept in the session's own state: it expires and is deleted with it
            fields = redis_server.client().hkeys(keys[0])
            assert any(str(f).startswith("fastmcp:") for f in fields), fields
        assert len(balancer.by_port) == 2
        # The client closed its session (DELETE): the state is gone with it.
        assert not list(redis_server.client().scan_iter("mcp:st:*"))
        client, _ = balanced(procs, "handshake")
        async with client:
            assert value(await client.call_tool("bump", {})) == 1  # a new session starts afresh
    finally:
        for proc in procs:
            proc.stop()


async def test_fastmcp_elicitation_answered_through_the_other_replica(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    async def answer(_ctx: Any, params: types.ElicitRequestParams) -> types.ElicitResult:
        return types.ElicitResult(action="accept", content={"value": f"yes to {params.message}"})

    procs = two_replicas(tmp_path, redis_server, FORMS["fastmcp"])
    try:
        client, _ = balanced(procs, "handshake", elicitation_callback=answer)
        async with client:
            for n in range(4):
                with anyio.fail_after(15):
                    assert value(await client.call_tool("ask", {"question": f"q{n}"})) == f"yes to q{n}"
        forwarded = sum(
            float(line.split()[-1])
            for p in procs
            for line in httpx2.get(f"{p.base}/metrics").text.splitlines()
            if line.startswith("mcp_runtime_answers_forwarded_total ")
        )
        assert forwarded >= 1  # at least one answer landed on the replica that did not ask
    finally:
        for proc in procs:
            proc.stop()


@pytest.mark.parametrize(
    ("spec", "says"),
    [
        ("no_such_module_here:app", "cannot import 'no_such_module_here'"),
        ("os:path", "is a builtins.module"),
        ("os:sep", "is a builtins.str"),
        ("tests.runtime.app_forms.holders:Holder.missing", "has no attribute 'missing'"),
        ("tests.runtime.app_forms.holders:needs_arguments", "needs arguments (name)"),
        ("tests.runtime.app_forms.holders:returns_nothing", "returned None"),
        ("tests.runtime.app_forms.holders", "MODULE:ATTR"),
    ],
)
def test_a_bad_app_is_refused_at_start_with_a_message(tmp_path: Path, spec: str, says: str) -> None:
    with pytest.raises(AppLoadError) as refused:
        load_app(spec)
    assert says in str(refused.value)
    cmd = [sys.executable, "-m", "mcp_runtime.cli", "serve", "--app", spec, "--port", "1"]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert says in done.stderr, done.stderr


def test_every_form_loads_to_its_low_level_server() -> None:
    kinds = {form: load_app(spec).kind for form, spec in FORMS.items()}
    assert kinds["mcpserver-dotted"] == "MCPServer"
    assert kinds["lowlevel"] == kinds["lowlevel-factory"] == "Server"
    assert kinds["fastmcp"] == kinds["fastmcp-holder"] == kinds["fastmcp-factory"] == "FastMCP"
