"""The settings model: the contract the operator renders into pods."""

from __future__ import annotations

import pytest

from mcp_runtime.settings import RuntimeSettings, SettingsError, load_settings


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    for key in list(os.environ):
        if key.startswith("MCP_"):
            monkeypatch.delenv(key)


def test_defaults() -> None:
    s = load_settings()
    assert s.session_backend == "memory"
    assert s.max_sessions == 10_000
    assert "localhost:*" in s.allowed_hosts


def test_comma_separated_lists(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MCP_ALLOWED_HOSTS", " a.svc:* , b ,,")
    assert load_settings().allowed_hosts == ["a.svc:*", "b"]


def test_to_env_round_trips(monkeypatch: pytest.MonkeyPatch) -> None:
    original = RuntimeSettings(max_sessions=5, allowed_hosts=["x:*", "y"], json_response=True, replica_name="r1")
    for key, value in original.to_env().items():
        monkeypatch.setenv(key, value)
    assert load_settings() == original


def test_errors_name_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MCP_MAX_SESSIONS", "0")
    monkeypatch.setenv("MCP_LOG_FORMAT", "xml")
    with pytest.raises(SettingsError) as error:
        load_settings()
    assert "MCP_MAX_SESSIONS" in str(error.value) and "MCP_LOG_FORMAT" in str(error.value)


def test_every_field_is_described() -> None:
    assert all(info.description for info in RuntimeSettings.model_fields.values())


def test_readme_documents_every_variable() -> None:
    from pathlib import Path

    readme = (Path(__file__).parents[2] / "README.md").read_text()
    for name in RuntimeSettings.model_fields:
        assert f"`{RuntimeSettings.env_name(name)}`" in readme, name
