"""Three mcp-runtime replicas as an OAuth resource server on one Redis, behind a balancer with no affinity whose
URL is the resource, and a real OpenID provider issuing tokens for it: what the authorization tests share."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.support.http_balancer import HttpBalancer
from tests.support.oidc import OpenIdProvider, running_provider
from tests.support.procs import RuntimeProcess, spawn, wait_healthy
from tests.support.redis_server import RedisServer, redis_env

OTHER_AUDIENCE = "http://other.test/mcp"


@dataclass
class Fleet:
    provider: OpenIdProvider
    replicas: list[RuntimeProcess]
    balancer: HttpBalancer

    @property
    def url(self) -> str:
        return self.balancer.url


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def oauth_env(provider: OpenIdProvider, resource: str, **extra: str) -> dict[str, str]:
    return {
        "MCP_OAUTH_ISSUER": provider.issuer,
        "MCP_OAUTH_RESOURCE": resource,
        "MCP_OAUTH_REQUIRED_SCOPES": "tools:read",
        "MCP_OAUTH_JWKS_MIN_REFRESH_SECONDS": "0",
        "MCP_OAUTH_TIMEOUT_SECONDS": "2",
        **extra,
    }


@contextmanager
def fleet_of(workdir: Path, redis: RedisServer, count: int = 3, access_ttl: int = 300, **extra: str) -> Iterator[Fleet]:
    """`count` replicas on `redis`, behind a balancer whose URL is the resource, and a provider issuing for it
    (access tokens living `access_ttl` seconds); `extra`: more runtime settings."""
    balancer = HttpBalancer([])
    with running_provider(workdir / "provider", [balancer.url, OTHER_AUDIENCE], access_ttl=access_ttl) as provider:
        scopes = json.dumps({"session_increment": ["tools:admin"], "caller_info": ["tools:read"]})
        env = redis_env(
            redis,
            **oauth_env(
                provider, balancer.url, MCP_OAUTH_CLOCK_SKEW_SECONDS="1", MCP_OAUTH_TOOL_SCOPES=scopes, **extra
            ),
        )
        replicas = [spawn(workdir, env) for _ in range(count)]
        try:
            for proc in replicas:
                wait_healthy(proc)
            balancer.route_to([p.port for p in replicas])
            balancer.start()
            try:
                yield Fleet(provider, replicas, balancer)
            finally:
                balancer.stop()
        finally:
            for proc in replicas:
                proc.stop()
            for proc in replicas:
                assert "Traceback" not in proc.log(), proc.log()[-3000:]
