"""What the Sentinels of a highly available managed Redis say: the primary, and which replicas are in sync."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import redis

from mcp_operator.defaults import MASTER_NAME, SENTINEL_PORT, SENTINELS
from mcp_operator.names import Owner


@dataclass(frozen=True)
class Topology:
    """The primary's host, how many replicas the Sentinels know and how many of them are in sync."""

    primary: str | None
    replicas: int = 0
    in_sync: int = 0
    error: str | None = None


def in_sync(replica: dict[str, Any]) -> bool:
    """A replica as `SENTINEL REPLICAS` reports it: up, and its link to the primary up."""
    flags = str(replica.get("flags", ""))
    return "s_down" not in flags and "disconnected" not in flags and replica.get("master-link-status") == "ok"


def topology(master: dict[str, Any], replicas: list[dict[str, Any]]) -> Topology:
    """From `SENTINEL MASTER` and `SENTINEL REPLICAS` (pure)."""
    flags = str(master.get("flags", ""))
    primary = None if "s_down" in flags or "o_down" in flags else str(master.get("ip"))
    return Topology(primary, len(replicas), sum(1 for r in replicas if in_sync(r)))


def ask_sentinels(owner: Owner, password: str, timeout: float = 1.0) -> Topology:
    """Ask each Sentinel in turn; the first that answers is believed."""
    errors = []
    for ordinal in range(SENTINELS):
        host = owner.sentinel_pod_host(ordinal)
        client = redis.Redis(
            host=host, port=SENTINEL_PORT, password=password, socket_timeout=timeout, socket_connect_timeout=timeout
        )
        try:
            master: Any = client.sentinel_master(MASTER_NAME)
            replicas: Any = client.sentinel_slaves(MASTER_NAME)
            return topology(dict(master), list(replicas))
        except (redis.RedisError, OSError) as error:
            errors.append(f"{host}: {error}")
        finally:
            client.close()
    return Topology(None, error="; ".join(errors))
