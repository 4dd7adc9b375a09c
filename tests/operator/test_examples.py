"""Every McpServer under examples/ (own-server/ too) is valid as it is: what `kubectl apply` will accept."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from mcp_operator.api import McpServerSpec
from mcp_runtime.sdk.loading import load_app

EXAMPLES = Path(__file__).parents[2] / "examples"
MANIFESTS = sorted(EXAMPLES.rglob("*.yaml"))


@pytest.mark.parametrize("path", MANIFESTS, ids=[str(p.relative_to(EXAMPLES)) for p in MANIFESTS])
def test_example_is_a_valid_mcpserver(path: Path) -> None:
    manifest = yaml.safe_load(path.read_text())
    assert manifest["apiVersion"] == "mcpfleet.dev/v1alpha1" and manifest["kind"] == "McpServer"
    McpServerSpec.model_validate(manifest["spec"])


def test_own_server_names_the_app_its_dockerfile_copies() -> None:
    manifest = yaml.safe_load((EXAMPLES / "own-server" / "mcpserver.yaml").read_text())
    module = manifest["spec"]["app"].partition(":")[0]
    dockerfile = (EXAMPLES / "own-server" / "Dockerfile").read_text()
    assert f"COPY {module}.py /app/" in dockerfile
    assert manifest["spec"]["replicas"] == 3 and manifest["spec"]["sessions"]["backend"] == "redis"


def test_the_demo_app_loads() -> None:
    assert load_app("mcp_runtime.examples.demo:app").kind == "MCPServer"
