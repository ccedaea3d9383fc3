"""The library's layers run one way, and no two modules import each other in a circle.

Every module under ``girml/`` and ``pipelines/`` is parsed (nothing is imported) and each of its
imports checked, the ones inside functions and ``if TYPE_CHECKING:`` blocks included: a module
imports only packages of its own layer or of a lower one (:data:`LAYERS`, low to high), tracking
deals in URIs, runs, folders and files (never in networks: :data:`FORBIDDEN`), and the library
never imports the orchestration that runs it (:data:`ORCHESTRATION`). The imports a module runs
when it is imported (those at module level, ``TYPE_CHECKING`` blocks included) must not form a
cycle between ``girml`` modules.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from fnmatch import fnmatch
from functools import cache
from itertools import pairwise
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# Low to high: a unit (a package under girml/, or a top-level module by its name) may import
# units of its own layer or lower ones. `__init__` is girml itself (`import girml`).
LAYERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    (
        "core",
        (
            "__init__",
            "config",
            "core",
            "storage",
        ),
    ),
    ("architectures, degradations, metrics", ("degradations", "metrics", "models", "baselines")),
    ("data, training, tracking", ("data", "training", "tracking")),
    ("evaluation", ("evaluation", "tuning", "interpret")),
    ("artifacts", ("artifacts",)),
    (
        "entry points",
        ("stages", "cli", "cli_*", "restore", "restore_*", "params_check", "__main__"),
    ),
)
PIPELINES = "pipelines"  # above every girml unit
# what the library never imports: the orchestration that runs it
ORCHESTRATION = (PIPELINES, "prefect", "dvc")
# imports that the layers allow but a unit must not make: tracking never builds a network
FORBIDDEN = {"tracking": ("models", "artifacts")}


@dataclass(frozen=True)
class Import:
    """One import statement's target, where it is and whether it runs at import time."""

    path: Path
    line: int
    target: str  # the dotted module imported (for `from a import b`: a.b when that is a module)
    module_level: bool  # outside any function (a TYPE_CHECKING block counts as module level)

    def where(self) -> str:
        return f"{self.path.relative_to(ROOT)}:{self.line}"


def module_name(path: Path) -> str:
    """``girml/a/b.py`` -> ``girml.a.b``; ``girml/a/__init__.py`` -> ``girml.a``."""
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


@cache
def modules() -> dict[str, Path]:
    """Every module of ``girml`` and ``pipelines`` by its dotted name."""
    files = sorted([*(ROOT / "girml").rglob("*.py"), *(ROOT / PIPELINES).rglob("*.py")])
    return {module_name(path): path for path in files}


def _resolve(path: Path, node: ast.ImportFrom) -> str:
    """The absolute module of a ``from`` import (relative ones resolved against ``path``)."""
    if not node.level:
        return node.module or ""
    package = module_name(path).split(".")
    if path.name != "__init__.py":
        package.pop()
    base = package[: len(package) - node.level + 1]
    return ".".join([*base, *([node.module] if node.module else [])])


def _targets(path: Path, node: ast.Import | ast.ImportFrom) -> list[str]:
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    module = _resolve(path, node)
    known = modules()
    return [
        f"{module}.{alias.name}" if f"{module}.{alias.name}" in known else module
        for alias in node.names
    ]


def _walk(path: Path, node: ast.AST, module_level: bool) -> list[Import]:
    found = []
    for child in ast.iter_child_nodes(node):
        if isinstance(child, ast.Import | ast.ImportFrom):
            found += [Import(path, child.lineno, t, module_level) for t in _targets(path, child)]
        inside = isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda)
        found += _walk(path, child, module_level and not inside)
    return found


@cache
def imports() -> tuple[Import, ...]:
    """Every import of every module (class bodies and TYPE_CHECKING blocks: module level)."""
    found: list[Import] = []
    for path in modules().values():
        found += _walk(path, ast.parse(path.read_text(encoding="utf-8"), str(path)), True)
    return tuple(found)


def unit(module: str) -> str | None:
    """The layered unit of a ``girml``/``pipelines`` module; None for other packages."""
    parts = module.split(".")
    if parts[0] == PIPELINES:
        return PIPELINES
    if parts[0] != "girml":
        return None
    return parts[1] if len(parts) > 1 else "__init__"


def layer(name: str) -> int | None:
    """The layer of a unit (``pipelines`` above all); None when the map does not name it."""
    if name == PIPELINES:
        return len(LAYERS)
    for index, (_, patterns) in enumerate(LAYERS):
        if any(fnmatch(name, pattern) for pattern in patterns):
            return index
    return None


def _describe(name: str) -> str:
    index = layer(name)
    title = "pipelines" if index == len(LAYERS) else LAYERS[index][0] if index is not None else "?"
    return f"{name} (layer {index}: {title})"


def test_every_unit_has_a_layer() -> None:
    unplaced = sorted({u for m in modules() if (u := unit(m)) and layer(u) is None})
    assert not unplaced, (
        f"girml units missing from LAYERS in {Path(__file__).name}: {', '.join(unplaced)}"
    )


def test_no_import_reaches_a_higher_layer() -> None:
    bad = []
    for found in imports():
        source, target = unit(module_name(found.path)), unit(found.target)
        if source is None or target is None or source == target:
            continue
        low, high = layer(source), layer(target)
        if low is not None and high is not None and high > low:
            bad.append(
                f"{found.where()}: {_describe(source)} imports {found.target}, "
                f"of {_describe(target)}"
            )
    assert not bad, "imports of a higher layer:\n" + "\n".join(bad)


def test_tracking_builds_no_network() -> None:
    bad = [
        f"{found.where()}: {unit(module_name(found.path))} imports {found.target}"
        for found in imports()
        if unit(found.target) in FORBIDDEN.get(unit(module_name(found.path)) or "", ())
    ]
    assert not bad, "imports that tracking must not make:\n" + "\n".join(bad)


def test_the_library_never_imports_orchestration() -> None:
    bad = [
        f"{found.where()}: imports {found.target}"
        for found in imports()
        if module_name(found.path).startswith("girml")
        and found.target.split(".")[0] in ORCHESTRATION
    ]
    assert not bad, "girml imports orchestration:\n" + "\n".join(bad)


def _graph() -> dict[str, dict[str, Import]]:
    """``{module: {imported girml module: the import}}`` of the imports run at import time."""
    known = modules()
    graph: dict[str, dict[str, Import]] = {name: {} for name in known if name.startswith("girml")}
    for found in imports():
        source = module_name(found.path)
        if found.module_level and source in graph and found.target in graph:
            graph[source].setdefault(found.target, found)
    return graph


def _cycles(graph: dict[str, dict[str, Import]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan), each as a cycle
    through them."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in graph[node]:
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1 or node in graph[node]:
                components.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return [_cycle_through(graph, members) for members in components]


def _cycle_through(graph: dict[str, dict[str, Import]], members: list[str]) -> list[str]:
    """The shortest cycle from a component's first module back to it (breadth first; one exists
    in a strongly connected component)."""
    inside, start = set(members), members[0]
    came_from: dict[str, str] = {}
    queue = [start]
    while queue:
        node = queue.pop(0)
        for nxt in sorted(graph[node]):
            if nxt == start:
                path = [node]
                while path[-1] != start:
                    path.append(came_from[path[-1]])
                return [*reversed(path), start]
            if nxt in inside and nxt not in came_from:
                came_from[nxt] = node
                queue.append(nxt)
    raise AssertionError(f"no cycle through {start}")  # not a strongly connected component


def test_no_import_cycles() -> None:
    graph = _graph()
    lines = []
    for cycle in _cycles(graph):
        steps = [
            f"{a} ({graph[a][b].where()})" if b in graph.get(a, {}) else a
            for a, b in pairwise(cycle)
        ]
        lines.append(" -> ".join([*steps, cycle[-1]]))
    assert not lines, "import cycles (module-level imports):\n" + "\n".join(lines)


def test_the_checks_find_what_they_should(tmp_path: Path) -> None:
    """The parser sees lazy and TYPE_CHECKING imports, and the rules name the offender."""
    source = tmp_path / "probe.py"
    source.write_text(
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n"
        "    from girml.artifacts.store import load_model_dir\n"
        "def f():\n"
        "    import pipelines.cli\n",
        encoding="utf-8",
    )
    found = _walk(source, ast.parse(source.read_text()), True)
    assert [(i.line, i.target, i.module_level) for i in found] == [
        (1, "typing", True),
        (3, "girml.artifacts.store", True),
        (5, "pipelines.cli", False),
    ]
    assert layer("tracking") == 2 and layer("artifacts") == 4 and layer("cli_tools") == 5
    assert layer(PIPELINES) == len(LAYERS) and layer("no_such_unit") is None
    assert unit("girml") == "__init__" and unit("numpy") is None
    ring = {
        "girml.a": {"girml.b": Import(source, 1, "girml.b", True)},
        "girml.b": {"girml.a": Import(source, 2, "girml.a", True)},
        "girml.c": {},
    }
    assert _cycles(ring) == [["girml.a", "girml.b", "girml.a"]]
