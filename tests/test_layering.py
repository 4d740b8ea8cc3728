"""The package's dependencies point one way: domain code never imports the web layer, no two modules import
each other (function-level imports included)."""

from __future__ import annotations

import ast
from pathlib import Path

from tests import REPO

PACKAGE = REPO / "src" / "studytrack"


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports() -> dict[str, set[str]]:
    modules = {module_name(path): path for path in PACKAGE.rglob("*.py") if "migrations" not in path.parts}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        found = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                found.add(node.module)
                found |= {f"{node.module}.{alias.name}" for alias in node.names}
            elif isinstance(node, ast.Import):
                found |= {alias.name for alias in node.names}
        graph[name] = {target for target in found if target in modules and target != name}
    return graph


def test_domain_code_never_imports_the_web_layer() -> None:
    for name, targets in imports().items():
        if name.startswith(("studytrack.events", "studytrack.auth", "studytrack.database")):
            assert not [t for t in targets if t.startswith("studytrack.web")], name


def imported_packages(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module.split(".")[0])
        elif isinstance(node, ast.Import):
            found |= {alias.name.split(".")[0] for alias in node.names}
    return found


def test_domain_code_knows_nothing_of_http_frameworks() -> None:
    for path in PACKAGE.rglob("*.py"):
        if module_name(path).startswith(("studytrack.events", "studytrack.auth", "studytrack.database")):
            assert not imported_packages(path) & {"fastapi", "starlette"}, path


def test_no_two_modules_import_each_other() -> None:
    graph = imports()
    pairs = {tuple(sorted((a, b))) for a, targets in graph.items() for b in targets if a in graph.get(b, set())}
    assert pairs == set()
