"""The e2e suite runs against the local cluster that `e2e/cluster.sh up` started (see `make e2e`)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator

import pytest

from e2e.kube import STATE, Kube


@pytest.fixture(scope="session")
def kube() -> Kube:
    if not (STATE / "admin.kubeconfig").exists():
        pytest.fail("no local cluster: run `e2e/cluster.sh up` first (or `make e2e`)")
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
