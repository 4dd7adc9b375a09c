"""The chart's copies agree with their sources (the CRDs, the version, the default images); no helm needed."""

from __future__ import annotations

import json
import subprocess
import tomllib
from pathlib import Path

import yaml

from mcp_operator.defaults import DEFAULT_REDIS_IMAGE, DEFAULT_RUNTIME_IMAGE

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
        "runtimeImage": DEFAULT_RUNTIME_IMAGE,
        "redisImage": DEFAULT_REDIS_IMAGE,
        "imagePullPolicy": "IfNotPresent",
    }
    assert DEFAULT_RUNTIME_IMAGE.endswith(f":{version}")


def test_the_default_values_are_valid_json_schema_input() -> None:
    schema = json.loads((CHART / "values.schema.json").read_text())
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    assert set(values) <= set(schema["properties"]), set(values) - set(schema["properties"])
    assert set(schema["required"]) <= set(values)


def test_the_image_build_reads_the_redis_image_from_the_operators_defaults() -> None:
    """e2e/images/build.sh tags the Redis image it builds with what this sed finds in defaults.py."""
    build = (ROOT / "e2e" / "images" / "build.sh").read_text()
    sed = 'sed -n \'s/^DEFAULT_REDIS_IMAGE = "\\(.*\\)"$/\\1/p\' "$ROOT/operator/mcp_operator/defaults.py"'
    assert f"REDIS_REF=$({sed})" in build
    found = subprocess.run(
        [
            "sed",
            "-n",
            's/^DEFAULT_REDIS_IMAGE = "\\(.*\\)"$/\\1/p',
            str(ROOT / "operator" / "mcp_operator" / "defaults.py"),
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert found == f"{DEFAULT_REDIS_IMAGE}\n"
