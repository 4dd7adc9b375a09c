"""The runtime's Redis client wiring (pure): what Sentinel connections are given, what counts as a lost
connection."""

from __future__ import annotations

from pathlib import Path

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError

from mcp_runtime.redis_store.client import sentinel_options
from mcp_runtime.redis_store.errors import connection_lost
from mcp_runtime.settings import RuntimeSettings


def test_sentinel_connections_take_the_urls_credentials_database_and_tls(tmp_path: Path) -> None:

    secret = tmp_path / "password"
    secret.write_text("from-file\n")
    settings = RuntimeSettings(
        session_backend="redis",
        redis_url="rediss://app@ignored:1/3?ssl_cert_reqs=required&ssl_ca_certs=/ca.crt",
        redis_password_file=secret,
        redis_sentinels=["[::1]:26379", "sentinel-1:26380"],
        redis_sentinel_master="mymaster",
        request_state_keys=["k" * 40],
    )
    sentinel, data = sentinel_options(settings)
    assert data["username"] == "app" and data["password"] == "from-file" and data["db"] == 3
    assert data["ssl"] is True and data["ssl_ca_certs"] == "/ca.crt" and data["ssl_cert_reqs"] == "required"
    assert "host" not in data and "port" not in data and "connection_class" not in data
    assert sentinel["password"] == "from-file" and sentinel["ssl"] is True and "db" not in sentinel
    assert sentinel["socket_timeout"] == settings.redis_timeout_seconds


def test_a_lost_connection_is_told_from_a_fault() -> None:
    assert connection_lost(RedisConnectionError("Connection refused"))
    assert connection_lost(OSError(111, "refused"))
    # uvloop, writing to a socket Redis closed while redis-py set the connection up:
    assert connection_lost(
        RuntimeError("unable to perform operation on <TCPTransport closed=True>; the handler is closed")
    )
    assert not connection_lost(RuntimeError("dictionary changed size during iteration"))
    assert connection_lost(ResponseError("ERR wrong number of arguments"))  # any RedisError: call() tells faults apart
