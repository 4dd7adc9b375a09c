"""Change notifications across replicas, for modern-era clients' `subscriptions/listen` streams.

Those streams are fed by the app's in-process bus; `RedisSubscriptionBus` takes its place for publishing, so a
change made on any replica is published to Redis, and relays what Redis carries to the listen streams of this
replica.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

import anyio
import redis.asyncio as aioredis
from anyio.abc import TaskStatus
from mcp.server.mcpserver import MCPServer
from mcp.server.subscriptions import (
    PromptsListChanged,
    ResourcesListChanged,
    ResourceUpdated,
    ServerEvent,
    SubscriptionBus,
    ToolsListChanged,
)

from mcp_runtime.backends.base import BackendUnavailable
from mcp_runtime.redis_store.errors import call
from mcp_runtime.redis_store.keys import RedisKeys
from mcp_runtime.redis_store.pubsub import PubSub, keep_subscribed
from mcp_runtime.sdk.surface import replace_subscription_bus, subscription_bus

logger = logging.getLogger(__name__)


_SIMPLE: dict[str, type[ToolsListChanged | PromptsListChanged | ResourcesListChanged]] = {
    "tools": ToolsListChanged,
    "prompts": PromptsListChanged,
    "resources": ResourcesListChanged,
}


def encode_event(event: ServerEvent) -> str:
    if isinstance(event, ResourceUpdated):
        return json.dumps({"k": "resource", "uri": event.uri})
    for kind, cls in _SIMPLE.items():
        if isinstance(event, cls):
            return json.dumps({"k": kind})
    raise TypeError(f"unknown server event {event!r}")


def decode_event(data: str) -> ServerEvent:
    fields: dict[str, Any] = json.loads(data)
    if fields["k"] == "resource":
        return ResourceUpdated(uri=fields["uri"])
    return _SIMPLE[fields["k"]]()


class RedisSubscriptionBus:
    """The app's bus across replicas: publish to Redis, deliver from Redis to this replica's listeners."""

    def __init__(self, client: aioredis.Redis, *, key_prefix: str, local: SubscriptionBus, timeout: float) -> None:
        self.redis = client
        self.channel = RedisKeys(key_prefix).bus
        self.local = local
        self.timeout = timeout

    @classmethod
    def install(cls, app: MCPServer, client: aioredis.Redis, key_prefix: str, timeout: float) -> RedisSubscriptionBus:
        bus = cls(client, key_prefix=key_prefix, local=subscription_bus(app), timeout=timeout)
        replace_subscription_bus(app, bus)
        return bus

    async def publish(self, event: ServerEvent) -> None:
        try:
            await call(self.redis.publish(self.channel, encode_event(event)), self.timeout)
        except BackendUnavailable as error:
            # Listeners on this replica still hear it; the others miss it while Redis is away.
            logger.warning("change notification not shared (redis: %s); delivered on this replica only", error)
            await self.local.publish(event)

    def subscribe(self, listener: Callable[[ServerEvent], None]) -> Callable[[], None]:
        return self.local.subscribe(listener)

    async def relay(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Deliver the bus's events to local listeners, resubscribing by itself after a Redis outage."""
        await keep_subscribed(
            self.redis, lambda: [self.channel], self._listen, what="change notifications", task_status=task_status
        )

    async def _listen(self, pubsub: PubSub) -> None:
        while True:
            message = await pubsub.get_message(timeout=1.0)
            if message is not None and message.get("type") == "message":
                try:
                    await self.local.publish(decode_event(message["data"]))
                except (ValueError, KeyError, TypeError):
                    logger.warning("ignored a malformed change notification: %r", message["data"])
