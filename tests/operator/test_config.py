"""The operator's defaults (MCP_FLEET_*): what an McpServer gets when it leaves an image empty."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from mcp_operator.api import McpServerSpec
from mcp_operator.cli import main
from mcp_operator.config import OperatorSettings, effective_spec
from mcp_operator.defaults import DEFAULT_REDIS_IMAGE, DEFAULT_RUNTIME_IMAGE
from mcp_operator.desired import Generated, desired_state
from mcp_operator.names import Owner

OWNER = Owner("demo", "team-a", "uid-1")


def images(spec: McpServerSpec) -> dict[str, str]:
    state = desired_state(OWNER, spec, Generated(["k" * 64], "p" * 64), {})
    found = {}
    for manifest in state.apply:
        if manifest["kind"] in ("Deployment", "StatefulSet"):
            found[manifest["kind"]] = manifest["spec"]["template"]["spec"]["containers"][0]["image"]
    return found


def test_the_package_defaults_apply_when_nothing_is_set(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MCP_FLEET_DEFAULT_RUNTIME_IMAGE", raising=False)
    monkeypatch.delenv("MCP_FLEET_DEFAULT_REDIS_IMAGE", raising=False)
    spec = effective_spec(McpServerSpec.model_validate({"sessions": {"backend": "redis"}}), OperatorSettings())
    assert images(spec) == {"Deployment": DEFAULT_RUNTIME_IMAGE, "StatefulSet": DEFAULT_REDIS_IMAGE}


def test_the_operators_defaults_fill_empty_images(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MCP_FLEET_DEFAULT_RUNTIME_IMAGE", "registry.example/mcp/runtime:2")
    monkeypatch.setenv("MCP_FLEET_DEFAULT_REDIS_IMAGE", "registry.example/mcp/redis:7")
    spec = effective_spec(McpServerSpec.model_validate({"sessions": {"backend": "redis"}}), OperatorSettings())
    assert images(spec) == {
        "Deployment": "registry.example/mcp/runtime:2",
        "StatefulSet": "registry.example/mcp/redis:7",
    }


def test_an_image_in_the_spec_wins_over_the_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MCP_FLEET_DEFAULT_RUNTIME_IMAGE", "registry.example/mcp/runtime:2")
    raw = McpServerSpec.model_validate(
        {"image": "team/server:1", "sessions": {"backend": "redis"}, "redis": {"image": "r:1"}}
    )
    assert images(effective_spec(raw, OperatorSettings())) == {"Deployment": "team/server:1", "StatefulSet": "r:1"}


def test_an_empty_default_is_refused(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("MCP_FLEET_DEFAULT_RUNTIME_IMAGE", "")
    with pytest.raises(ValidationError):
        OperatorSettings()
    assert main(["run"]) == 2
    assert "MCP_FLEET_DEFAULT_RUNTIME_IMAGE" in capsys.readouterr().err


def test_the_operator_imports_only_the_runtimes_settings() -> None:
    """The operator may use mcp_runtime.settings (the contract) and the official MCP client (the Verified
    probe), never the runtime's server (its image leaves the runtime's own dependencies out)."""
    import subprocess
    import sys

    code = (
        "import sys, mcp_operator.cli, mcp_operator.controller.registration; "
        "loaded = sorted(m for m in sys.modules if m.startswith('mcp_runtime.') and m != 'mcp_runtime.settings'); "
        "assert not loaded, loaded; "
        "assert 'mcp.client.client' in sys.modules"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
