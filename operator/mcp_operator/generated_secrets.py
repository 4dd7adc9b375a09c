"""Secrets the operator generates once and keeps: the requestState keys and the managed Redis password (pure)."""

from __future__ import annotations

import base64
import secrets
from typing import Any

from mcp_operator.names import Owner


def new_secret_value() -> str:
    return secrets.token_hex(32)


def build_request_state_secret(owner: Owner, keys: list[str]) -> dict[str, Any]:
    """The keys sealing 2026-07-28 requestState, one a line (the first seals, all open)."""
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "Opaque",
        "metadata": owner.metadata(owner.request_state_secret, "server"),
        "data": {"keys": base64.b64encode("\n".join(keys).encode()).decode()},
    }


def build_redis_secret(owner: Owner, password: str) -> dict[str, Any]:
    """The managed Redis's password Secret."""
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "Opaque",
        "metadata": owner.metadata(owner.redis_secret, "redis"),
        "data": {"password": base64.b64encode(password.encode()).decode()},
    }


def decode(secret: dict[str, Any], key: str) -> str | None:
    value = (secret.get("data") or {}).get(key)
    return base64.b64decode(value).decode() if value else None
