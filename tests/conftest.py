from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.procs import RuntimeProcess, running
from tests.redis_server import RedisServer, start_redis


@pytest.fixture
def runtime(tmp_path: Path) -> Iterator[RuntimeProcess]:
    """One mcp-runtime with the demo app and default settings."""
    with running(tmp_path) as proc:
        yield proc


@pytest.fixture(params=["legacy", "2026-07-28"])
def mode(request: pytest.FixtureRequest) -> str:
    mode: str = request.param
    return mode


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    server = start_redis(tmp_path / "redis")
    yield server
    server.stop()
