"""kubectl and helm against the cluster KUBECONFIG names (`e2e/target.sh env` prints it for each CLUSTER)."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

E2E = Path(__file__).parent
STATE = Path(os.environ.get("MCP_FLEET_CLUSTER_STATE", "/var/lib/mcp-fleet-cluster"))


class Cluster:
    """The cluster under test, through kubectl and helm."""

    def __init__(self) -> None:
        self.env = dict(os.environ)  # KUBECONFIG, and kubectl and helm on PATH (conftest checks)

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
