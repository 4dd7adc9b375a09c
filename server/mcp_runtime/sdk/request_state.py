"""Shared requestState keys for modern-era multi round-trip requests.

The SDK seals `requestState` with a random key per process unless told otherwise, so a request continued on
another replica could not be opened; `use_request_state_keys` gives the app a boundary on the shared keys
(the first one seals, all of them open).
"""

from __future__ import annotations

from typing import Any

from mcp.server.lowlevel.server import Server
from mcp.server.request_state import RequestStateBoundary, RequestStateSecurity


def use_request_state_keys(server: Server[Any], audience: str, keys: list[str], ttl: float) -> None:
    """Seal and open the app's requestState with `keys` (in place of the SDK's per-process key).

    An app whose low-level server has a requestState boundary (MCPServer and FastMCP install one) gets it
    replaced; one without (a plain low-level Server) gets one, with its server name as the audience.
    """
    boundary = RequestStateBoundary(RequestStateSecurity(keys=keys, ttl=ttl), default_audience=audience)
    for index, middleware in enumerate(server.middleware):
        if isinstance(middleware, RequestStateBoundary):
            server.middleware[index] = boundary
            return
    server.middleware.append(boundary)
