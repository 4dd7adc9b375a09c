"""The FastMCP 4 internals the runtime relies on (`mcp_runtime.sdk.loading`, `mcp_runtime.sdk.fastmcp_state`).

An upgrade of fastmcp that moves one fails here, and the test's name says which.
"""

from __future__ import annotations

from fastmcp import FastMCP
from mcp.server.lowlevel.server import Server

from mcp_runtime.backends.memory import MemoryBackend
from mcp_runtime.sdk.fastmcp_state import RuntimeStateStore, install


def test_fastmcp_keeps_its_low_level_server_at__mcp_server() -> None:
    assert isinstance(FastMCP("x")._mcp_server, Server)


def test_fastmcp_keeps_the_given_session_state_store_at__state_storage() -> None:
    assert FastMCP("x")._state_storage is None  # none given: FastMCP would make a memory store on first use
    mine = RuntimeStateStore(MemoryBackend(session_ttl=60, max_sessions=10, max_sessions_per_client=10))
    given = FastMCP("y", session_state_store=mine)  # type: ignore[arg-type]
    assert given._state_storage is mine


def test_install_leaves_an_apps_own_store_alone() -> None:
    backend = MemoryBackend(session_ttl=60, max_sessions=10, max_sessions_per_client=10)
    own = RuntimeStateStore(backend)
    app = FastMCP("x", session_state_store=own)  # type: ignore[arg-type]
    assert not install(app, backend) and app._state_storage is own
    bare = FastMCP("y")
    assert install(bare, backend) and isinstance(bare._state_storage, RuntimeStateStore)


async def test_fastmcp_state_goes_through_the_store() -> None:
    backend = MemoryBackend(session_ttl=60, max_sessions=10, max_sessions_per_client=10)
    app = FastMCP("x")
    install(app, backend)
    adapter = app._state_store
    from fastmcp.server.server import StateValue

    await adapter.put(key="not-a-session:count", value=StateValue(value=3), ttl=60)
    got = await adapter.get(key="not-a-session:count")
    assert got is not None and got.value == 3
