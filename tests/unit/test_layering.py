"""Imports point one way: api -> engine -> store -> core; core imports nothing of ours or of I/O libraries."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "redis_persist"
FORBIDDEN = {
    "core": {"redis_persist.api", "redis_persist.engine", "redis_persist.store", "redis", "fastapi", "langgraph"},
    "store": {"redis_persist.api", "redis_persist.engine", "fastapi", "langgraph"},
    "engine": {"redis_persist.api", "fastapi", "starlette"},
}


def _imports(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


@pytest.mark.parametrize("layer", sorted(FORBIDDEN))
def test_layer_imports_only_downwards(layer: str) -> None:
    offenders = []
    for path in (PACKAGE / layer).rglob("*.py"):
        for name in _imports(path):
            if any(name == bad or name.startswith(bad + ".") for bad in FORBIDDEN[layer]):
                offenders.append(f"{path.relative_to(PACKAGE)} imports {name}")
    assert offenders == []
