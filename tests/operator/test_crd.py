"""The CRD is generated from the models, and the checked-in copy is current."""

from __future__ import annotations

from pathlib import Path

import yaml

from mcp_operator.crd import build_crd, render_crd

ROOT = Path(__file__).parents[2]


def test_checked_in_crd_is_current() -> None:
    assert (ROOT / "crds" / "mcpservers.yaml").read_text() == render_crd(), "run `make crds`"


def walk(node: object, path: str = "") -> list[str]:
    """Paths of schema nodes with properties but no description."""
    missing = []
    if isinstance(node, dict):
        for name, prop in (node.get("properties") or {}).items():
            if name not in ("apiVersion", "kind", "metadata") and "description" not in prop:
                missing.append(f"{path}.{name}")
            missing += walk(prop, f"{path}.{name}")
        if isinstance(node.get("items"), dict):
            missing += walk(node["items"], f"{path}[]")
    return missing


def test_every_field_has_a_description() -> None:
    schema = build_crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    assert walk(schema) == []


def test_shape() -> None:
    crd = build_crd()
    version = crd["spec"]["versions"][0]
    assert crd["spec"]["names"]["shortNames"] == ["mcps"]
    assert version["subresources"]["scale"]["specReplicasPath"] == ".spec.replicas"
    columns = [c["name"] for c in version["additionalPrinterColumns"]]
    assert columns == ["Ready", "Replicas", "Backend", "Verified", "Tools", "URL", "Age"]
    spec = version["schema"]["openAPIV3Schema"]["properties"]["spec"]
    assert spec["x-kubernetes-validations"]
    assert spec["properties"]["disruptionBudget"]["properties"]["minAvailable"]["x-kubernetes-int-or-string"]
    assert yaml.safe_load(render_crd()) == crd
