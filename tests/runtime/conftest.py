from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.clients import ERAS, Era
from tests.support.procs import RuntimeProcess, running
from tests.support.redis_server import RedisServer, start_redis


@pytest.fixture
def runtime(tmp_path: Path) -> Iterator[RuntimeProcess]:
    """One mcp-runtime with the demo app and default settings."""
    with running(tmp_path) as proc:
        yield proc


@pytest.fixture(params=ERAS)
def era(request: pytest.FixtureRequest) -> Era:
    """Each protocol era in turn."""
    era: Era = request.param
    return era


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    """A real redis-server on a free port, for one test."""
    server = start_redis(tmp_path / "redis")
    yield server
    server.stop()
