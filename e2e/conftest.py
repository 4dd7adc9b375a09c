"""The e2e suite runs against the cluster KUBECONFIG names, with the project's images where
MCP_FLEET_IMAGE_REGISTRY says (`make e2e CLUSTER=local|kind|current` sets both through `e2e/target.sh env`)."""

from __future__ import annotations

import json
import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from e2e.kube import Kube


@pytest.fixture(scope="session")
def kube() -> Kube:
    if not os.environ.get("KUBECONFIG") or not Path(os.environ["KUBECONFIG"]).is_file():
        pytest.fail('no cluster: run make e2e, or set KUBECONFIG: eval "$(CLUSTER=local e2e/target.sh env)"')
    if shutil.which("kubectl") is None or shutil.which("helm") is None:
        pytest.fail("kubectl and helm must be on PATH (e2e/target.sh env puts the cached ones there)")
    kube = Kube()
    # An operator left by `make demo` would reconcile the suite's McpServers too (and share its peering):
    # the suite needs the cluster to itself, and `make e2e` takes the cluster down afterwards anyway.
    for release in json.loads(kube.helm("list", "--all-namespaces", "-o", "json")):
        if release["chart"].startswith("mcp-fleet-"):
            kube.helm("uninstall", release["name"], "-n", release["namespace"], "--wait")
    return kube


@pytest.fixture
def namespace(kube: Kube) -> Iterator[str]:
    name = f"e2e-{uuid.uuid4().hex[:8]}"
    kube.run("create", "namespace", name)
    yield name
    kube.run("delete", "namespace", name, "--wait=false", check=False)
