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
# A primary refuses writes unless this many replicas acknowledged replication within the last
# MIN_REPLICAS_MAX_LAG seconds (set when the set has two data pods or more): a primary cut off from its replicas
# stops taking writes into the void within about that long, and one restarted alone takes none.
MIN_REPLICAS_TO_WRITE = 1
MIN_REPLICAS_MAX_LAG = 2
# The switchover of a primary about to stop (redis-pre-stop.sh), each step bounded: the replicas catching up
# with the paused primary, the Sentinels naming another primary, this node becoming a replica. The pause of
# writes outlasts the three, so it ends by itself only if the script was killed; the script, its final 2 s
# and Redis's own shutdown (10 s) fit the data pods' termination grace period.
SWITCHOVER_CATCH_UP_SECONDS = 5
SWITCHOVER_FAILOVER_SECONDS = 20
SWITCHOVER_DEMOTE_SECONDS = 5
SWITCHOVER_PAUSE_MS = (SWITCHOVER_CATCH_UP_SECONDS + SWITCHOVER_FAILOVER_SECONDS + SWITCHOVER_DEMOTE_SECONDS + 2) * 1000
REDIS_SHUTDOWN_SECONDS = 10
DATA_POD_GRACE_SECONDS = 45
# A data node that starts while the Sentinels still name it the primary (redis-start.sh): how long it waits
# for an old process still serving under its name to go, then for the Sentinels to promote a replica.
STALE_PRIMARY_SECONDS = 30
START_FAILOVER_SECONDS = 30
# How long a data node's role may disagree with the Sentinels' primary before its liveness probe has it restarted
# (redis-live.sh): well beyond a failover's settling (the failover timeout), so a failover never restarts one.
ROLE_DISAGREEMENT_SECONDS = 60


def runtime_default(field: str) -> Any:
    """The runtime's own default of one of its settings, so the operator never spells it a second time."""
    return RuntimeSettings.model_fields[field].get_default(call_default_factory=True)
