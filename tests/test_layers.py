"""The package's layers: dependencies point one way, down; no import circle, no edge up.

Every import counts (module top, inside functions, under `if TYPE_CHECKING:`): a
type-only or deferred import is still a dependency a reader has to follow. The edges are
the ones /work/shared/tools/import_cycles.py reads (the same walk of the same imports);
the layers are the ones docs/architecture.md draws. A new module gets a layer here and a
sentence there (tests/test_docs.py checks the page names every module).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "gitmodel"

# Bottom first. A module may import its own layer or any layer below it, never above.
# A name is one module; "PACKAGE.*" is a package and every submodule of it that no more
# specific name claims ("gitmodel.commands.*" is every verb).
LAYERS: list[tuple[str, tuple[str, ...]]] = [
    (
        "foundations",  # what every layer may use: errors, git, files, config, tag grammar
        (
            "gitmodel.errors",
            "gitmodel.record",
            "gitmodel.text",  # how sizes and counts read, for the library and the skin
            "gitmodel.git",
            "gitmodel.lockfile",
            "gitmodel.forking",  # half of a many-file loop on the second core
            "gitmodel.paths",
            "gitmodel.config",
            "gitmodel.dvcconfig",
            "gitmodel.policy",
            "gitmodel.versions",
            "gitmodel.releases",  # listing the release tags the grammar reads
            "gitmodel.discovery",  # finding the work tree, git dirs and hooks directory
        ),
    ),
    (
        "data",  # what gitmodel keeps: objects, pointers, notes, metrics
        (
            "gitmodel.store.*",  # objects, dirs, hashing, the stat cache, manifests
            "gitmodel.tree",
            "gitmodel.pointer",
            "gitmodel.notes",
            "gitmodel.metrics",
            "gitmodel.history",
            "gitmodel.worktrees",
            "gitmodel.cache",  # which cache and link types: DVC's config + worktrees + store
            "gitmodel.dedup.chunking",
            "gitmodel.dedup.codec",
            "gitmodel.dedup.packs",
            "gitmodel.dedup.chunkstore",
            "gitmodel.dedup.recipe",
            "gitmodel.dedup.buffers",
            "gitmodel.dedup.pipeline",
            "gitmodel.dedup.rebuild",
            "gitmodel.dedup.staging",  # the object an add fills chunk by chunk
        ),
    ),
    (
        "services",  # take a store, notes or a root (never the Repo) and do one job
        (
            "gitmodel.workspace_view",
            "gitmodel.workspace",
            "gitmodel.checkout",
            "gitmodel.commit",
            "gitmodel.lineage",
            "gitmodel.attachments",
            "gitmodel.bootstrap",
            "gitmodel.noise_check",  # the gate's question: predictions as evidence, then the test
            "gitmodel.noise",
            "gitmodel.evaluate",
            "gitmodel.eval_sets",
            "gitmodel.gate",
            "gitmodel.noise_rule",  # the gate's noise rule over a verdict's comparisons
            "gitmodel.verdict",
            "gitmodel.evidence",
            "gitmodel.rewrite",
            "gitmodel.remote",
            "gitmodel.dvc_remote",
            "gitmodel.sftp_fetch",  # a DVC ssh remote's small objects in one SFTP session
            "gitmodel.transfer",
            "gitmodel.notes_sync",
            "gitmodel.registry",
            "gitmodel.promotion",
            "gitmodel.dedup.*",  # its store (chunking, codec, packs, chunkstore) is data
        ),
    ),
    (
        "orchestration",  # compose the services: the Repo facade, release, sync, the doors
        (
            "gitmodel",
            "gitmodel.repo",
            "gitmodel.release",
            "gitmodel.init",  # DVC's files and the notes config (notes_sync) of a new clone
            "gitmodel.sync",
            "gitmodel.consume.*",
            "gitmodel.fsck",
            "gitmodel.gc",
            "gitmodel.plot",
            "gitmodel.report",
            "gitmodel.hooks.*",
        ),
    ),
    (
        "skin",  # parse, call the library, render
        (
            "gitmodel.__main__",
            "gitmodel.cli",
            "gitmodel.commands.*",
            "gitmodel.completion",
            "gitmodel.hooks",  # the hooks' entry point: hands the doors the terminal's reporter
            "gitmodel.render",
            "gitmodel.dashboard",
        ),
    ),
]

# Edges that run up today, each with why it is still there and who removes it. Empty is
# the goal: an entry here is a debt, and one whose edge has gone fails the test below.
ALLOWED_UPWARD: dict[tuple[str, str], str] = {}


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


def layer_of(module: str, layers: list[tuple[str, tuple[str, ...]]]) -> int | None:
    """The index (0 = bottom) of the layer whose most specific name covers module."""
    best: tuple[int, int] | None = None  # (how specific the name is, layer index)
    for index, (_, names) in enumerate(layers):
        for name in names:
            package = name.removesuffix(".*")
            if module == name:
                rank = 2 * len(name) + 1  # a module's own name beats its package's
            elif name.endswith(".*") and (module == package or module.startswith(package + ".")):
                rank = 2 * len(package)
            else:
                continue
            if best is None or rank > best[0]:
                best = (rank, index)
    return None if best is None else best[1]


def unplaced(graph: dict[str, set[str]], layers: list[tuple[str, tuple[str, ...]]]) -> list[str]:
    return sorted(m for m in graph if layer_of(m, layers) is None)


def upward_edges(
    graph: dict[str, set[str]], layers: list[tuple[str, tuple[str, ...]]]
) -> list[tuple[str, str]]:
    """(importer, imported) for every import of a module in a higher layer."""
    found = []
    for module, targets in sorted(graph.items()):
        low = layer_of(module, layers)
        for target in sorted(targets):
            high = layer_of(target, layers)
            if low is not None and high is not None and high > low:
                found.append((module, target))
    return found


def _describe(edges: list[tuple[str, str]], layers: list[tuple[str, tuple[str, ...]]]) -> str:
    def where(m: str) -> str:
        index = layer_of(m, layers)
        return f"{m} ({layers[index][0] if index is not None else '?'})"

    return "; ".join(f"{where(a)} imports {where(b)}" for a, b in edges)


@pytest.fixture(scope="module")
def graph() -> dict[str, set[str]]:
    graph = import_graph(PACKAGE)
    assert "gitmodel.repo" in graph and "gitmodel.store" in graph  # the real package
    return graph


def test_package_has_no_import_circle(graph: dict[str, set[str]]) -> None:
    cycle = find_cycle(graph)
    assert cycle is None, "import circle: " + " -> ".join(cycle or [])


def test_every_module_has_a_layer(graph: dict[str, set[str]]) -> None:
    missing = unplaced(graph, LAYERS)
    assert not missing, f"give these modules a layer in tests/test_layers.py: {missing}"


def test_no_import_runs_up_a_layer(graph: dict[str, set[str]]) -> None:
    upward = [e for e in upward_edges(graph, LAYERS) if e not in ALLOWED_UPWARD]
    assert not upward, "imports that run up a layer: " + _describe(upward, LAYERS)


def test_allowed_upward_edges_still_exist(graph: dict[str, set[str]]) -> None:
    # A debt that was paid is struck off the list, so the list cannot hide a new one.
    existing = set(upward_edges(graph, LAYERS))
    stale = [e for e in ALLOWED_UPWARD if e not in existing]
    assert not stale, f"no longer upward, remove from ALLOWED_UPWARD: {stale}"


def test_layers_name_each_module_once() -> None:
    names = [n for _, layer in LAYERS for n in layer]
    assert len(names) == len(set(names))


def _package(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root / next(iter(files)).split("/")[0]


def test_check_finds_a_planted_circle(tmp_path: Path) -> None:
    package = _package(
        tmp_path,
        {
            "planted/__init__.py": "",
            "planted/low.py": (
                "TYPE_CHECKING = False\nif TYPE_CHECKING:\n    from planted.high import High\n"
            ),
            "planted/high.py": "def f():\n    from . import low\n    return low\n",
            "planted/alone.py": "import planted.low\n",
        },
    )
    cycle = find_cycle(import_graph(package))
    assert cycle is not None
    assert set(cycle) == {"planted.low", "planted.high"}
    assert cycle[0] == cycle[-1]


PLANTED_LAYERS: list[tuple[str, tuple[str, ...]]] = [
    ("bottom", ("planted.base", "planted.data.rows")),
    ("middle", ("planted.data.*", "planted.service")),
    ("top", ("planted", "planted.cli")),
]


@pytest.mark.parametrize(
    "importer, statement",
    [
        ("base.py", "from planted.service import run\n"),  # at module top
        ("base.py", "def f():\n    from . import cli\n    return cli\n"),  # deferred
        ("base.py", "TYPE_CHECKING = False\nif TYPE_CHECKING:\n    import planted.cli\n"),
        ("data/rows.py", "from .. import service\n"),  # the package's specific name decides
        ("service.py", "from planted import cli\n"),  # `from package import module`
    ],
)
def test_check_finds_a_planted_upward_edge(tmp_path: Path, importer: str, statement: str) -> None:
    files = {
        "planted/__init__.py": "from planted.cli import main\n",
        "planted/base.py": "import os\n",
        "planted/data/__init__.py": "from planted.data.rows import ROWS\n",
        "planted/data/rows.py": "ROWS = []\n",
        "planted/service.py": "from planted.base import os\nfrom planted.data import ROWS\n",
        "planted/cli.py": "from planted.service import os\n\ndef main():\n    pass\n",
    }
    package = _package(tmp_path, files)
    graph = import_graph(package)
    assert upward_edges(graph, PLANTED_LAYERS) == []  # the one-way package is clean
    path = package / importer
    path.write_text(path.read_text() + statement)
    upward = upward_edges(import_graph(package), PLANTED_LAYERS)
    assert len(upward) == 1
    assert upward[0][0] == "planted." + importer.removesuffix(".py").replace("/", ".")


def test_check_finds_a_module_without_a_layer(tmp_path: Path) -> None:
    package = _package(tmp_path, {"planted/__init__.py": "", "planted/base.py": ""})
    (package / "stray.py").write_text("import planted.base\n")
    assert unplaced(import_graph(package), PLANTED_LAYERS) == ["planted.stray"]


def test_check_passes_a_one_way_package(tmp_path: Path) -> None:
    package = _package(
        tmp_path,
        {
            "oneway/__init__.py": "from oneway.top import run\n",
            "oneway/top.py": "from oneway import __doc__\nfrom oneway.sub import base\n",
            "oneway/sub/__init__.py": "",
            "oneway/sub/base.py": "import os\n",
        },
    )
    assert find_cycle(import_graph(package)) is None
