"""The package's modules import one another in one direction only: no import circle.

Every import counts (module top, inside functions, under `if TYPE_CHECKING:`): a
type-only or deferred import is still a dependency a reader has to follow.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "gitmodel"


def _module_name(package: Path, path: Path) -> str:
    parts = list(path.relative_to(package.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()  # importing a package means importing its __init__
    return ".".join(parts)


def _imported(tree: ast.AST, name: str, is_package: bool) -> set[str]:
    """Every module name the file's imports can mean, relative imports resolved."""
    base = name.split(".") if is_package else name.split(".")[:-1]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                prefix = base[: len(base) - node.level + 1]
                module = ".".join(prefix + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            found.add(module)
            found.update(f"{module}.{alias.name}" for alias in node.names)  # a submodule
    return found


def import_graph(package: Path) -> dict[str, set[str]]:
    files = {_module_name(package, p): p for p in sorted(package.rglob("*.py"))}
    graph: dict[str, set[str]] = {}
    for name, path in files.items():
        tree = ast.parse(path.read_text(), str(path))
        graph[name] = {
            m
            for m in _imported(tree, name, path.name == "__init__.py")
            # a submodule's own package is imported with it anyway: not a design edge
            if m in files and m != name and not name.startswith(m + ".")
        }
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import circle (a -> b -> ... -> a) found by depth-first search, or None."""
    done: set[str] = set()
    path: list[str] = []
    on_path: set[str] = set()

    def visit(module: str) -> list[str] | None:
        path.append(module)
        on_path.add(module)
        for target in sorted(graph[module]):
            if target in on_path:
                return path[path.index(target) :] + [target]
            if target not in done:
                cycle = visit(target)
                if cycle:
                    return cycle
        path.pop()
        on_path.discard(module)
        done.add(module)
        return None

    for module in sorted(graph):
        if module not in done:
            cycle = visit(module)
            if cycle:
                return cycle
    return None


def test_package_has_no_import_circle() -> None:
    graph = import_graph(PACKAGE)
    assert "gitmodel.repo" in graph and "gitmodel.attachments" in graph  # the real package
    cycle = find_cycle(graph)
    assert cycle is None, "import circle: " + " -> ".join(cycle or [])


def test_check_finds_a_planted_circle(tmp_path: Path) -> None:
    package = tmp_path / "planted"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "low.py").write_text(
        "TYPE_CHECKING = False\nif TYPE_CHECKING:\n    from planted.high import High\n"
    )
    (package / "high.py").write_text("def f():\n    from . import low\n    return low\n")
    (package / "alone.py").write_text("import planted.low\n")
    cycle = find_cycle(import_graph(package))
    assert cycle is not None
    assert set(cycle) == {"planted.low", "planted.high"}
    assert cycle[0] == cycle[-1]


def test_check_passes_a_one_way_package(tmp_path: Path) -> None:
    package = tmp_path / "oneway"
    (package / "sub").mkdir(parents=True)
    (package / "__init__.py").write_text("from oneway.top import run\n")
    (package / "top.py").write_text("from oneway import __doc__\nfrom oneway.sub import base\n")
    (package / "sub" / "__init__.py").write_text("")
    (package / "sub" / "base.py").write_text("import os\n")
    assert find_cycle(import_graph(package)) is None
