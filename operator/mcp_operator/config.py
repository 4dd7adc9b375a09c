"""The operator's own settings (`MCP_FLEET_*` environment variables; the Helm chart sets them).

They are the defaults the operator gives McpServers that leave a field empty, so that a cluster whose images
come from a private registry changes them once, in the chart, instead of in every McpServer.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from mcp_operator.api import DEFAULT_IMAGE, DEFAULT_REDIS_IMAGE, McpServerSpec


class OperatorSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="MCP_FLEET_", extra="ignore")

    default_runtime_image: str = Field(DEFAULT_IMAGE, min_length=1, description="spec.image when it is empty")
    default_redis_image: str = Field(DEFAULT_REDIS_IMAGE, min_length=1, description="spec.redis.image when empty")
    default_image_pull_policy: Literal["Always", "IfNotPresent", "Never"] = Field(
        "IfNotPresent", description="spec.imagePullPolicy when empty"
    )


def effective_spec(spec: McpServerSpec, settings: OperatorSettings) -> McpServerSpec:
    """The spec with the operator's defaults filled in where the user left a field empty."""
    redis = spec.redis
    if not redis.image:
        redis = redis.model_copy(update={"image": settings.default_redis_image})
    return spec.model_copy(
        update={
            "image": spec.image or settings.default_runtime_image,
            "redis": redis,
            "image_pull_policy": spec.image_pull_policy or settings.default_image_pull_policy,
        }
    )
