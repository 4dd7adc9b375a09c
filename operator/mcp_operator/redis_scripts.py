"""The shell scripts of a highly available managed Redis, mounted from a ConfigMap into the Redis image.

They are the `scripts/*.sh` files of this package (shellchecked by `make lint`) and run under /bin/sh of the
Redis image (Debian's redis-server and redis-cli). Every constant they need (ports, the Sentinel count, the
master name, the pods' names) comes from the container's environment, which `redis_ha.py` renders.
Addresses are the pods' stable DNS names under the headless Services, so a pod that comes back keeps its name
and the Sentinels keep knowing it (`resolve-hostnames`, `announce-hostnames`).
"""

from __future__ import annotations

import hashlib
import json
from importlib.resources import files

SCRIPT_NAMES = (
    "redis-common.sh",  # sourced by the others: asking the Sentinels
    "redis-start.sh",
    "redis-ready.sh",
    "redis-live.sh",
    "redis-pre-stop.sh",
    "sentinel-start.sh",
    "sentinel-ready.sh",
)


def _load() -> dict[str, str]:
    folder = files("mcp_operator").joinpath("scripts")
    return {name: folder.joinpath(name).read_text(encoding="utf-8") for name in SCRIPT_NAMES}


SCRIPTS = _load()
# In the pods' annotations: a change of a script rolls the pods that run it.
SCRIPTS_VERSION = hashlib.sha256(json.dumps(SCRIPTS, sort_keys=True).encode()).hexdigest()[:16]
