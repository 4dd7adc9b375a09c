"""The chart's copies agree with their sources (the CRDs, the version, the default images); no helm needed."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import yaml

from mcp_operator.api import DEFAULT_IMAGE, DEFAULT_REDIS_IMAGE

ROOT = Path(__file__).parents[2]
CHART = ROOT / "charts" / "mcp-fleet"


def test_the_charts_crds_are_the_ones_in_crds() -> None:
    sources = {p.name: p.read_text() for p in (ROOT / "crds").glob("*.yaml")}
    copies = {p.name: p.read_text() for p in (CHART / "crds").glob("*.yaml")}
    assert sources, "crds/ is empty"
    assert copies == sources, "charts/mcp-fleet/crds differs from crds/: run `make crds`"


def test_versions_and_default_images_agree() -> None:
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    assert chart["version"] == chart["appVersion"] == version
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    assert values["mcpServerDefaults"] == {
        "runtimeImage": DEFAULT_IMAGE,
        "redisImage": DEFAULT_REDIS_IMAGE,
        "imagePullPolicy": "IfNotPresent",
    }
    assert DEFAULT_IMAGE.endswith(f":{version}")


def test_the_default_values_are_valid_json_schema_input() -> None:
    schema = json.loads((CHART / "values.schema.json").read_text())
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    assert set(values) <= set(schema["properties"]), set(values) - set(schema["properties"])
    assert set(schema["required"]) <= set(values)
