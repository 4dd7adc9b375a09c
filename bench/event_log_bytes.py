"""Redis bytes per retained SSE event: what the event log of resumable streams costs in Redis.

    python -m bench.event_log_bytes [--events 1000]

Records `--events` messages through the runtime's own RECORD script (`RedisEvents.record`) into one session's
log on a real Redis, as a POST stream of a tool call does (a progress notification each, and the call's
result), and reads `MEMORY USAGE` of the log (all samples) and the growth of INFO used_memory.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
from pathlib import Path

import redis.asyncio as aioredis
from mcp_types import JSONRPCNotification, JSONRPCResponse

from mcp_runtime.redis_store.events import RedisEvents
from mcp_runtime.redis_store.keys import RedisKeys
from mcp_runtime.sessions.event_ids import PostStream
from tests.support.redis_server import start_redis

PREFIX = "mcp:"


def messages() -> dict[str, str]:
    progress = JSONRPCNotification(
        jsonrpc="2.0",
        method="notifications/progress",
        params={"progressToken": "p", "progress": 17, "total": 30, "message": "waited 1.7s of 3.0s"},
    )
    result = JSONRPCResponse(
        jsonrpc="2.0",
        id=42,
        result={"content": [{"type": "text", "text": "5"}], "structuredContent": {"result": 5}, "isError": False},
    )
    return {
        "progress": progress.model_dump_json(by_alias=True, exclude_unset=True),
        "result": result.model_dump_json(by_alias=True, exclude_unset=True),
    }


async def measure(url: str, count: int) -> dict[str, object]:
    client = aioredis.Redis.from_url(url, decode_responses=True)
    events = RedisEvents(client, key_prefix=PREFIX, log_length=count, log_ttl=3600, retention=3600, timeout=5)
    token = PostStream.new("mcp-server-7d9f8b6c5-x2x4q", 42).token
    out: dict[str, object] = {"token_bytes": len(token)}
    for kind, message in messages().items():
        session = f"bench-{kind}"
        await client.delete(RedisKeys(PREFIX).events(session))
        before = int((await client.info("memory"))["used_memory"])
        for _ in range(count):
            await events.record(session, token, message, kind == "result")
        after = int((await client.info("memory"))["used_memory"])
        usage = int(await client.memory_usage(RedisKeys(PREFIX).events(session), samples=0) or 0)
        out[kind] = {
            "message_bytes": len(message),
            "memory_usage_per_event": round(usage / count, 1),
            "used_memory_per_event": round((after - before) / count, 1),
        }
    await client.aclose()
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=1000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        server = start_redis(Path(tmp) / "redis")
        try:
            result = asyncio.run(measure(server.url, args.events))
        finally:
            server.stop()
    print(json.dumps({"events": args.events, **result}, indent=2))


if __name__ == "__main__":
    main()
