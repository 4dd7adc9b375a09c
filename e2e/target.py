"""The cluster the e2e suite and `make demo` run on, as `e2e/target.sh env` describes it: a KUBECONFIG, where
the project's images come from, and the chart values that name them. Nothing here knows how the cluster was
made (CLUSTER=local, kind or current)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).parents[1]
VERSION = yaml.safe_load((ROOT / "charts" / "mcp-fleet" / "Chart.yaml").read_text())["appVersion"]

CLUSTER = os.environ.get("MCP_FLEET_CLUSTER", "local")
# Where the nodes pull the project's images from (`host:port` or `host/path`); empty: the images are on the
# nodes already under their docker.io names (kind load, or the local cluster's load-image).
REGISTRY = os.environ.get("MCP_FLEET_IMAGE_REGISTRY", "").rstrip("/")
PULL_POLICY = "Always" if REGISTRY else "IfNotPresent"
# The local cluster's host reaches Service and pod addresses; other clusters' hosts need not.
HOST_REACHES_PODS = CLUSTER == "local"


def image(name: str, tag: str | None = None) -> str:
    """The reference pods use for one of the project's images (runtime, operator, redis, own-server-time)."""
    tag = tag or ("7.0" if name == "redis" else VERSION)
    return f"{REGISTRY}/mcp-fleet/{name}:{tag}" if REGISTRY else f"docker.io/mcp-fleet/{name}:{tag}"


def chart_values() -> dict[str, Any]:
    """The chart values that point the operator and McpServers' defaults at those images."""
    operator = image("operator")
    return {
        "image": {"repository": operator.rsplit(":", 1)[0], "tag": VERSION, "pullPolicy": PULL_POLICY},
        "mcpServerDefaults": {
            "runtimeImage": image("runtime"),
            "redisImage": image("redis"),
            "imagePullPolicy": PULL_POLICY,
        },
    }


def operator_env() -> dict[str, str]:
    """The same defaults for an operator run on this machine (the MCP_FLEET_* settings the chart renders)."""
    values = chart_values()["mcpServerDefaults"]
    return {
        "MCP_FLEET_DEFAULT_RUNTIME_IMAGE": values["runtimeImage"],
        "MCP_FLEET_DEFAULT_REDIS_IMAGE": values["redisImage"],
        "MCP_FLEET_DEFAULT_IMAGE_PULL_POLICY": values["imagePullPolicy"],
    }


def with_values(base: dict[str, Any]) -> dict[str, Any]:
    """`base` chart values with the image values added where `base` does not set them."""
    merged: dict[str, Any] = {}
    for key, value in chart_values().items():
        merged[key] = {**value, **base.get(key, {})}
    return {**base, **merged}


def alias_image() -> str:
    """Another reference to the runtime image, for a test that changes the default image and sees it roll out:
    a second tag in the registry (copied there with skopeo), or the short name of the image on the nodes."""
    if not REGISTRY:
        return f"mcp-fleet/runtime:{VERSION}"
    alias = image("runtime", f"{VERSION}-alias")
    subprocess.run(
        [
            "skopeo",
            "copy",
            "-q",
            "--src-tls-verify=false",
            "--dest-tls-verify=false",
            f"docker://{image('runtime')}",
            f"docker://{alias}",
        ],
        check=True,
        timeout=300,
    )
    return alias
