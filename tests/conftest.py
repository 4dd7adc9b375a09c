from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.procs import RuntimeProcess, running


@pytest.fixture
def runtime(tmp_path: Path) -> Iterator[RuntimeProcess]:
    """One mcp-runtime with the demo app and default settings."""
    with running(tmp_path) as proc:
        yield proc


@pytest.fixture(params=["legacy", "2026-07-28"])
def mode(request: pytest.FixtureRequest) -> str:
    mode: str = request.param
    return mode
