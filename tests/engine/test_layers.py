"""The layers hold: engine/ and data/ never import app/ or components/; data/ never imports engine/
except the error types; the stdlib-only worker scripts import nothing of ours."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def _modules(package: str) -> list[Path]:
    return sorted((ROOT / package).rglob("*.py"))


@pytest.mark.parametrize("package", ["engine", "data"])
def test_lower_layers_never_import_the_faces(package: str) -> None:
    offenders = {
        str(p.relative_to(ROOT)): sorted(n for n in _imports(p) if n.split(".")[0] in ("app", "components"))
        for p in _modules(package)
    }
    assert {k: v for k, v in offenders.items() if v} == {}


def test_data_layer_uses_only_engine_errors_and_settings() -> None:
    allowed = {"engine.errors", "engine.config"}
    offenders = {
        str(p.relative_to(ROOT)): sorted(
            n for n in _imports(p) if n.split(".")[0] == "engine" and n not in allowed
        )
        for p in _modules("data")
    }
    assert {k: v for k, v in offenders.items() if v} == {}


def test_worker_scripts_are_stdlib_only() -> None:
    ours = {"app", "components", "engine", "data", "tests"}
    for path in (ROOT / "engine" / "runtimes").glob("*_worker/*.py"):
        assert not {n for n in _imports(path) if n.split(".")[0] in ours}, path
