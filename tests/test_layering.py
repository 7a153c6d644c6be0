"""DESIGN.md's layout: imports point one way, down the table's order."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
ORDER = ["domain", "projections", "consumers", "replay", "simulator", "portal"]
# What each package may import, from DESIGN.md's table (simulator: only domain).
ALLOWED = {
    "domain": set(),
    "projections": {"domain"},
    "consumers": {"domain", "projections"},
    "replay": {"domain", "projections", "consumers"},
    "simulator": {"domain"},
    "portal": {"domain", "projections", "consumers", "replay", "simulator"},
}


def _imported_packages(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names & set(ORDER)


@pytest.mark.parametrize("package", ORDER)
def test_imports_point_one_way(package: str) -> None:
    offenders = {}
    for path in sorted((ROOT / package).rglob("*.py")):
        wrong = _imported_packages(path) - ALLOWED[package] - {package}
        if wrong:
            offenders[str(path.relative_to(ROOT))] = sorted(wrong)
    assert offenders == {}, f"{package} may import only {sorted(ALLOWED[package])}"
