"""An MCPServer at a dotted attribute, and things `--app` must refuse."""

from __future__ import annotations

from mcp_runtime.examples.demo import app


class Holder:
    demo = app


def needs_arguments(name: str) -> object:
    return app


def returns_nothing() -> None:
    return None
