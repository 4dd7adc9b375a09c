"""kubectl and helm against the local cluster that `e2e/cluster.sh up` started."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

E2E = Path(__file__).parent
STATE = Path(os.environ.get("MCP_FLEET_CLUSTER_STATE", "/var/lib/mcp-fleet-cluster"))


def cluster_env() -> dict[str, str]:
    """KUBECONFIG and PATH as `e2e/cluster.sh env` prints them."""
    line = subprocess.run(["bash", str(E2E / "cluster.sh"), "env"], capture_output=True, text=True, check=True)
    env = dict(os.environ)
    for part in line.stdout.strip().removeprefix("export ").split(" "):
        key, _, value = part.partition("=")
        env[key] = value.replace("$PATH", os.environ.get("PATH", ""))
    return env


class Kube:
    def __init__(self) -> None:
        self.env = cluster_env()

    def run(self, *args: str, input: str | None = None, check: bool = True, timeout: float = 120) -> str:
        done = subprocess.run(
            ["kubectl", *args], env=self.env, input=input, capture_output=True, text=True, timeout=timeout
        )
        if check and done.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed: {done.stderr}")
        return done.stdout

    def helm(self, *args: str, check: bool = True, timeout: float = 300) -> str:
        done = subprocess.run(["helm", *args], env=self.env, capture_output=True, text=True, timeout=timeout)
        if check and done.returncode != 0:
            raise AssertionError(f"helm {' '.join(args)} failed: {done.stderr}")
        return done.stdout

    def json(self, *args: str) -> Any:
        return json.loads(self.run(*args, "-o", "json"))

    def apply(self, manifest: str, namespace: str) -> None:
        self.run("apply", "-n", namespace, "-f", "-", input=manifest)
