"""The e2e suite runs against the cluster KUBECONFIG names, with the project's images where
MCP_FLEET_IMAGE_REGISTRY says (`make e2e CLUSTER=local|kind|current` sets both through `e2e/target.sh env`).

Order: tests marked `cluster_smoke` run first (the cluster itself works, so a broken cluster fails there and
not in the middle of an operator test), tests marked `cluster_teardown` run last (they take the cluster
down); the rest run in the order pytest collects them.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from e2e.kube import Cluster

FIRST = "cluster_smoke"
LAST = "cluster_teardown"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", f"{FIRST}: runs before every other e2e test (the cluster itself works)")
    config.addinivalue_line("markers", f"{LAST}: runs after every other e2e test (it takes the cluster down)")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Smoke tests first, teardown tests last, whatever their files are called (a stable sort)."""

    def place(item: pytest.Item) -> int:
        if item.get_closest_marker(FIRST):
            return 0
        return 2 if item.get_closest_marker(LAST) else 1

    items.sort(key=place)


@pytest.fixture(scope="session")
def kube() -> Cluster:
    if not os.environ.get("KUBECONFIG") or not Path(os.environ["KUBECONFIG"]).is_file():
        pytest.fail('no cluster: run make e2e, or set KUBECONFIG: eval "$(CLUSTER=local e2e/target.sh env)"')
    if shutil.which("kubectl") is None or shutil.which("helm") is None:
        pytest.fail("kubectl and helm must be on PATH (e2e/target.sh env puts the cached ones there)")
    kube = Cluster()
    # An operator left by `make demo` would reconcile the suite's McpServers too (and share its peering):
    # the suite needs the cluster to itself, and `make e2e` takes the cluster down afterwards anyway.
    for release in json.loads(kube.helm("list", "--all-namespaces", "-o", "json")):
        if release["chart"].startswith("mcp-fleet-"):
            kube.helm("uninstall", release["name"], "-n", release["namespace"], "--wait")
    return kube


@pytest.fixture
def namespace(kube: Cluster) -> Iterator[str]:
    name = f"e2e-{uuid.uuid4().hex[:8]}"
    kube.run("create", "namespace", name)
    yield name
    kube.run("delete", "namespace", name, "--wait=false", check=False)
