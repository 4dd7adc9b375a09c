"""Every default and constant the operator's modules share: one place to read them, one place to change them.

The images and the pull policy are the package defaults of the operator's settings (`config.py`), which
fills them into a spec that leaves them empty. The Redis constants reach the pods' start scripts as
environment variables (`redis_ha.py`), so the scripts spell none of them. The chart's `mcpServerDefaults`
repeats the images and the pull policy, and `e2e/images/build.sh` reads the Redis image from this file;
tests/operator/test_chart_sources.py checks that they agree.
"""

from __future__ import annotations

from typing import Any, Literal

from mcp_runtime.settings import RuntimeSettings

PullPolicy = Literal["Always", "IfNotPresent", "Never"]

# What an McpServer gets when it leaves a field empty (unless the operator's MCP_FLEET_* settings say else).
DEFAULT_RUNTIME_IMAGE = "docker.io/mcp-fleet/runtime:0.1.0"
DEFAULT_REDIS_IMAGE = "docker.io/mcp-fleet/redis:7.0"
DEFAULT_IMAGE_PULL_POLICY: PullPolicy = "IfNotPresent"
DEFAULT_APP = "mcp_runtime.examples.demo:app"

# The managed Redis.
REDIS_PORT = 6379
SENTINEL_PORT = 26379
SENTINELS = 3
SENTINEL_QUORUM = SENTINELS // 2 + 1  # Sentinels that must agree that the primary is down
MASTER_NAME = "mcp"  # the name the Sentinels monitor the primary under
DOWN_AFTER_MS = 5000
FAILOVER_TIMEOUT_MS = 20000


def runtime_default(field: str) -> Any:
    """The runtime's own default of one of its settings, so the operator never spells it a second time."""
    return RuntimeSettings.model_fields[field].get_default(call_default_factory=True)
