"""The operator's own settings (`MCP_FLEET_*` environment variables; the Helm chart sets them).

They are the defaults the operator gives McpServers that leave a field empty, so that a cluster whose images
come from a private registry changes them once, in the chart, instead of in every McpServer.
`effective_spec` is the one place those defaults are filled in: every builder reads the images and the pull
policy from the spec it returns.
"""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from mcp_operator.api import McpServerSpec
from mcp_operator.defaults import (
    DEFAULT_IMAGE_PULL_POLICY,
    DEFAULT_REDIS_IMAGE,
    DEFAULT_RUNTIME_IMAGE,
    PullPolicy,
)


class OperatorSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="MCP_FLEET_", extra="ignore")

    default_runtime_image: str = Field(DEFAULT_RUNTIME_IMAGE, min_length=1, description="spec.image when it is empty")
    default_redis_image: str = Field(DEFAULT_REDIS_IMAGE, min_length=1, description="spec.redis.image when empty")
    default_image_pull_policy: PullPolicy = Field(
        DEFAULT_IMAGE_PULL_POLICY, description="spec.imagePullPolicy when empty"
    )


def effective_spec(spec: McpServerSpec, settings: OperatorSettings) -> McpServerSpec:
    """The spec with the operator's defaults filled in where the user left a field empty: the server image, the
    image of the managed Redis and its Sentinels, and the pull policy of every container."""
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
