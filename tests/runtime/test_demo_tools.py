"""Every demo tool, its resource and its prompt, through the official client, in both protocol eras."""

from __future__ import annotations

import os

from mcp_types import TextContent

from tests.support.clients import Era, mcp_client
from tests.support.procs import RuntimeProcess


async def test_every_demo_tool(runtime: RuntimeProcess, era: Era) -> None:
    async with mcp_client(runtime.url, era) as client:
        tools = {tool.name for tool in (await client.list_tools()).tools}
        assert {"add", "whoami", "session_increment", "counter_create", "counter_increment", "slow", "ask"} <= tools

        assert (await client.call_tool("add", {"a": 2, "b": 40})).structured_content == {"result": 42}

        who = (await client.call_tool("whoami", {})).structured_content
        assert who is not None
        assert who["replica"] == f"replica-{runtime.port}"
        assert who["pid"] == runtime.process.pid != os.getpid()
        assert who["protocol_version"] == ("2025-11-25" if era == "handshake" else "2026-07-28")

        handle = (await client.call_tool("counter_create", {})).structured_content
        assert handle is not None
        assert (await client.call_tool("counter_increment", {"handle": handle["result"]})).structured_content == {
            "result": 1
        }
        result = await client.call_tool("counter_increment", {"handle": handle["result"], "by": 9})
        assert result.structured_content == {"result": 10}

        seen: list[float] = []

        async def on_progress(progress: float, total: float | None, message: str | None) -> None:
            seen.append(progress)

        slow = await client.call_tool("slow", {"seconds": 0.5}, progress_callback=on_progress)
        assert slow.structured_content == {"result": "waited 0.5s"}
        if era == "handshake":
            assert seen == sorted(seen) and len(seen) >= 3

        asked = await client.call_tool("ask", {"question": "colour?"})
        assert not asked.is_error, asked.content
        assert asked.structured_content == {"result": "answer to colour?"}

        resource = await client.read_resource("demo://replica")
        assert f"replica-{runtime.port}" in resource.contents[0].text  # type: ignore[union-attr]

        prompt = await client.get_prompt("greet", {"name": "Ada"})
        content = prompt.messages[0].content
        assert isinstance(content, TextContent) and "Ada" in content.text


async def test_session_increment_keeps_state_per_session(runtime: RuntimeProcess) -> None:
    async with mcp_client(runtime.url, "handshake") as first, mcp_client(runtime.url, "handshake") as second:
        assert (await first.call_tool("session_increment", {})).structured_content == {"result": 1}
        assert (await first.call_tool("session_increment", {"by": 4})).structured_content == {"result": 5}
        assert (await second.call_tool("session_increment", {})).structured_content == {"result": 1}
        assert (await first.call_tool("session_increment", {})).structured_content == {"result": 6}


async def test_session_increment_without_a_session_is_a_tool_error(runtime: RuntimeProcess) -> None:
    async with mcp_client(runtime.url, "modern") as client:
        result = await client.call_tool("session_increment", {})
        assert result.is_error
        assert "use a handle" in result.content[0].text  # type: ignore[union-attr]


async def test_unknown_handle_is_a_tool_error(runtime: RuntimeProcess, era: Era) -> None:
    async with mcp_client(runtime.url, era) as client:
        result = await client.call_tool("counter_increment", {"handle": "h_nope"})
        assert result.is_error
        assert "Unknown or expired handle" in result.content[0].text  # type: ignore[union-attr]
