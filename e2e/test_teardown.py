"""Last: `e2e/cluster.sh down` leaves no process, mount, network interface or iptables chain behind.

Runs only when MCP_FLEET_E2E_TEARDOWN=1 (as `make e2e` sets it), since it takes the cluster down.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from e2e.kube import E2E, STATE
from e2e.target import CLUSTER

pytestmark = pytest.mark.cluster_teardown  # last (e2e/conftest.py)

COMPONENTS = [
    "kube-apiserver",
    "kube-controller-manager",
    "kube-scheduler",
    "kubelet",
    "kube-proxy",
    "etcd",
    "coredns",
    "containerd-shim",
    f"containerd --config {STATE}",
    "host-path-provisioner",
    f"registry serve {STATE}",
]


@pytest.mark.skipif(
    os.environ.get("MCP_FLEET_E2E_TEARDOWN") != "1" or CLUSTER != "local",
    reason="takes the local cluster down (make e2e with CLUSTER=local sets MCP_FLEET_E2E_TEARDOWN=1)",
)
def test_down_leaves_nothing_behind() -> None:
    subprocess.run(["bash", str(E2E / "cluster.sh"), "down"], check=True, timeout=180)
    processes = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout.splitlines()
    left = [p for p in processes if any(c in p for c in COMPONENTS) and "pytest" not in p]
    assert not left, left
    mounts = Path("/proc/self/mountinfo").read_text()
    assert str(STATE) not in mounts
    links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout
    assert "mcpf-" not in links and "veth" not in links
    assert not [
        n
        for n in subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout.split()
        if n.startswith("cni-")
    ]
    rules = "".join(
        subprocess.run(["iptables-save", "-t", t], capture_output=True, text=True).stdout for t in ("nat", "filter")
    )
    assert "KUBE-" not in rules and "CNI-" not in rules
    assert not STATE.exists()
