"""The e2e suite runs against the local cluster that `e2e/cluster.sh up` started (see `make e2e`)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from e2e.kube import STATE, Kube


@pytest.fixture(scope="session")
def kube() -> Kube:
    if not (STATE / "admin.kubeconfig").exists():
        pytest.fail("no local cluster: run `e2e/cluster.sh up` first (or `make e2e`)")
    return Kube()


@pytest.fixture
def namespace(kube: Kube) -> Iterator[str]:
    name = f"e2e-{uuid.uuid4().hex[:8]}"
    kube.run("create", "namespace", name)
    yield name
    kube.run("delete", "namespace", name, "--wait=false", check=False)
