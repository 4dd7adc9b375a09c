"""The test tree's own rule: no test module imports another; what tests share lives in tests/support."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def imported_modules(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def test_no_test_module_imports_another() -> None:
    offenders = {
        f"{path.relative_to(ROOT)} imports {name}"
        for folder in ("tests", "e2e")
        for path in (ROOT / folder).rglob("*.py")
        for name in imported_modules(path)
        if name.split(".")[-1].startswith("test_") and name.split(".")[0] in ("tests", "e2e")
    }
    assert not offenders, sorted(offenders)
