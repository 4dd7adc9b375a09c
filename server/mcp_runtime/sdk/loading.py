"""The user's app: what `--app MODULE:ATTR` (and an McpServer's `app`) may name, and how it is served.

Accepted, each also as a zero-argument callable returning it (called once, at start), at any dotted
attribute path (`module:Holder.app`):
- an `mcp.server.mcpserver.MCPServer`;
- a low-level `mcp.server.lowlevel.Server`;
- a FastMCP 4.x app, or any object holding a low-level `Server` where FastMCP keeps it (`_mcp_server`).

The runtime serves the low-level server inside any of them. What only some forms have is used where it
exists: an `MCPServer`'s subscription bus (shared over Redis), a FastMCP app's session-state store (backed by
the runtime's session backend).
"""

from __future__ import annotations

import importlib
import inspect
from dataclasses import dataclass
from typing import Any

from mcp.server.lowlevel.server import Server
from mcp.server.mcpserver import MCPServer

from mcp_runtime.sdk.surface import lowlevel_server

ACCEPTED = (
    "an mcp.server.mcpserver.MCPServer, a low-level mcp.server.lowlevel.Server, a FastMCP 4.x app (or any "
    "object holding a low-level Server at ._mcp_server), or a zero-argument callable returning one of these"
)


class AppLoadError(Exception):
    """The app could not be loaded; the message says what was found and what is accepted."""


@dataclass(frozen=True)
class LoadedApp:
    server: Server[Any]  # the low-level server the runtime serves
    mcpserver: MCPServer | None = None  # set for an MCPServer app
    holder: Any = None  # set for a FastMCP app (or another holder of a low-level Server)
    kind: str = "server"

    @property
    def name(self) -> str:
        return str(self.server.name)


def load_app(spec: str) -> LoadedApp:
    """Import `MODULE:ATTR[.ATTR...]` and make a LoadedApp of what it names."""
    module_name, _, path = spec.partition(":")
    if not module_name or not path:
        raise AppLoadError(f"--app must look like MODULE:ATTR, got {spec!r}")
    try:
        module = importlib.import_module(module_name)
    except ImportError as error:
        raise AppLoadError(f"cannot import {module_name!r}: {error}") from error
    found: Any = module
    walked = module_name
    for part in path.split("."):
        if not part.isidentifier():
            raise AppLoadError(f"--app {spec!r}: {part!r} is not an attribute name")
        if not hasattr(found, part):
            raise AppLoadError(f"{walked} has no attribute {part!r} (from --app {spec!r})")
        found = getattr(found, part)
        walked = f"{walked}.{part}" if walked != module_name else f"{module_name}:{part}"
    app = as_app(found)
    if app is not None:
        return app
    if callable(found) and not isinstance(found, type):
        made = _call_factory(spec, found)
        app = as_app(made)
        if app is not None:
            return app
        raise AppLoadError(f"{spec}() returned {_describe(made)}; it must return {ACCEPTED}")
    raise AppLoadError(f"{spec} is {_describe(found)}; --app accepts {ACCEPTED}")


def as_app(obj: Any) -> LoadedApp | None:
    """A LoadedApp for an accepted object, or None."""
    if isinstance(obj, MCPServer):
        return LoadedApp(lowlevel_server(obj), mcpserver=obj, kind="MCPServer")
    if isinstance(obj, Server):
        return LoadedApp(obj, kind="Server")
    inner = getattr(obj, "_mcp_server", None) if not isinstance(obj, type) else None
    if isinstance(inner, Server):
        return LoadedApp(inner, holder=obj, kind=type(obj).__name__)
    return None


def _call_factory(spec: str, factory: Any) -> Any:
    try:
        signature = inspect.signature(factory)
    except (TypeError, ValueError):
        signature = None
    if signature is not None:
        required = [
            p.name
            for p in signature.parameters.values()
            if p.default is p.empty and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
        ]
        if required:
            raise AppLoadError(f"{spec} is a callable that needs arguments ({', '.join(required)}); {ACCEPTED}")
    if inspect.iscoroutinefunction(factory):
        raise AppLoadError(f"{spec} is an async function; a factory must be a plain function returning the app")
    try:
        return factory()
    except Exception as error:
        raise AppLoadError(f"{spec}() raised {type(error).__name__}: {error}") from error


def _describe(obj: Any) -> str:
    kind = type(obj)
    return f"a {kind.__module__}.{kind.__qualname__}" if obj is not None else "None"
