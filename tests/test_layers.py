"""Contracts between modules, read from the source: imports only, no running code."""

from __future__ import annotations

import ast
from pathlib import Path

import streaming
import streaming.driver

PACKAGE = Path(streaming.__file__).parent


def imports(path: Path) -> list[tuple[str, str]]:
    """(module, name) for every ``from streaming... import name`` in ``path``."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("streaming"):
            found += [(node.module or "", alias.name) for alias in node.names]
    return found


def module_of(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def test_no_private_name_crosses_a_module_boundary() -> None:
    crossings = [(module_of(path), module, name)
                 for path in PACKAGE.rglob("*.py") for module, name in imports(path)
                 if name.startswith("_") and module != module_of(path)]
    assert crossings == []


def test_the_driver_exports_only_what_other_layers_use() -> None:
    used = {name for path in PACKAGE.rglob("*.py")
            if "driver" not in path.relative_to(PACKAGE).parts
            for module, name in imports(path) if module == "streaming.driver"}
    assert set(streaming.driver.__all__) == used
