"""The module structure: no import cycles, and no module imports a layer above its own.

Every module under src/facetrust is parsed with ``ast``. For the layers every import counts,
wherever it stands (module level, inside a function, under ``TYPE_CHECKING``): naming a type
of a higher layer is depending on it. For cycles every import that runs counts, a function-level
one included (one that dodges a cycle is still a cycle); a ``TYPE_CHECKING`` import never runs,
so it cannot close one. ``LAYERS`` is the order docs/architecture.md explains; a module belongs
to the layer of the longest prefix that names it.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"

# Lowest first. A module may import its own layer (without a cycle) and any layer below it.
LAYERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    (
        "foundation",
        (
            "facetrust.errors",
            "facetrust.types",
            "facetrust.config",
            "facetrust.files",
            "facetrust.budget",
            "facetrust.images",
            "facetrust.align",
            "facetrust.calibration",
            "facetrust.normalise",
            "facetrust.clusternorm",
            "facetrust.data",
        ),
    ),
    (
        "models, index, store",
        ("facetrust.models", "facetrust.analysis", "facetrust.straighten", "facetrust.index", "facetrust.store"),
    ),
    # models.fake is the test double shipped with the library: fake_engine() assembles a FaceEngine
    # over the fake networks, so it stands beside the engine; nothing below the engine imports it.
    ("engine", ("facetrust.engine", "facetrust.models.fake")),
    ("fairness, people, video", ("facetrust.fairness", "facetrust.people", "facetrust.video")),
    ("governance", ("facetrust.governance",)),
    ("service", ("facetrust.service",)),
    ("ingest", ("facetrust.ingest",)),
    ("entry points", ("facetrust.api", "facetrust.cli", "facetrust.server")),
    ("package", ("facetrust",)),  # the public API re-exported from facetrust/__init__.py
)


def _modules() -> dict[str, Path]:
    found = {}
    for path in (SRC / "facetrust").rglob("*.py"):
        parts = list(path.relative_to(SRC).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


MODULES = _modules()


def _resolve(name: str) -> str | None:
    """The module a dotted name lives in (``facetrust.service.faces.enrol`` → ``facetrust.service.faces``)."""
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


def _type_only(tree: ast.Module) -> set[ast.AST]:
    """The statements under ``if TYPE_CHECKING:``."""
    found: set[ast.AST] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING":
            for stmt in node.body:
                found.update(ast.walk(stmt))
    return found


def _imports(module: str, path: Path, *, type_only: bool = True) -> set[str]:
    """The modules ``module`` imports (with ``type_only=False``: only those it imports at run time)."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    out: set[str | None] = set()
    tree = ast.parse(path.read_text(encoding="utf-8"))
    skip = set() if type_only else _type_only(tree)
    for node in ast.walk(tree):
        if node in skip:
            continue
        if isinstance(node, ast.Import):
            out.update(_resolve(a.name) for a in node.names if a.name.split(".")[0] == "facetrust")
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(parts + ([base] if base else []))
            if base.split(".")[0] != "facetrust":
                continue
            for alias in node.names:  # `from facetrust.service import faces` imports a module
                full = f"{base}.{alias.name}"
                out.add(full if full in MODULES else _resolve(base))
    out.discard(module)
    return {m for m in out if m is not None}


GRAPH = {module: _imports(module, path) for module, path in MODULES.items()}
RUNTIME = {module: _imports(module, path, type_only=False) for module, path in MODULES.items()}


def layer_of(module: str) -> int:
    best, rank = -1, -1
    for i, (_, prefixes) in enumerate(LAYERS):
        for prefix in prefixes:
            if (module == prefix or module.startswith(prefix + ".")) and len(prefix) > best:
                best, rank = len(prefix), i
    return rank


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan's algorithm, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def test_the_import_graph_sees_function_level_and_type_checking_imports() -> None:
    # engine.py imports the model registry inside a function, and service.governed imports the
    # store under TYPE_CHECKING: both are edges of the graph.
    assert "facetrust.models.yunet" in GRAPH["facetrust.engine"]
    assert "facetrust.store.sqlite" in GRAPH["facetrust.service.governed"]
    assert "facetrust.service.faces" in GRAPH["facetrust.service.faceservice"]
    assert "facetrust.store.sqlite" not in RUNTIME["facetrust.service.governed"]


def test_cycle_finder_reports_a_cycle_and_only_cycles() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": set()}
    assert _cycles(graph) == [["a", "b", "c"]]


def test_every_module_has_a_layer() -> None:
    assert [m for m in MODULES if layer_of(m) < 0] == []


def test_no_import_cycles() -> None:
    assert _cycles(RUNTIME) == []


@pytest.mark.parametrize("name", [name for name, _ in LAYERS])
def test_no_module_imports_a_layer_above_its_own(name: str) -> None:
    rank = [n for n, _ in LAYERS].index(name)
    upward = sorted(
        f"{module} -> {target} ({LAYERS[layer_of(target)][0]})"
        for module, targets in GRAPH.items()
        if layer_of(module) == rank
        for target in targets
        if layer_of(target) > rank
    )
    assert upward == []


def test_docs_state_the_layers_the_test_enforces() -> None:
    text = (SRC.parent / "docs" / "architecture.md").read_text(encoding="utf-8")
    rows = [line.split("|")[1:3] for line in text.splitlines() if line.startswith("| ") and "`facetrust" in line]
    documented = tuple((name.strip(), tuple(m.strip(" `") for m in mods.split(","))) for name, mods in rows)
    assert documented == LAYERS


def _private_names_imported(module: str, path: Path) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("facetrust.service"):
            found += [f"{module} imports {node.module}.{a.name}" for a in node.names if a.name.startswith("_")]
    return found


def test_service_modules_use_no_private_helper_of_another_module() -> None:
    # an operation module's private helpers are its own: what others need is public (and named so)
    found = [
        hit for m, p in MODULES.items() if m.startswith("facetrust.service") for hit in _private_names_imported(m, p)
    ]
    assert found == []


def test_service_modules_execute_no_sql() -> None:
    # the SQL of every operation sits behind the store (store/), so a second store can replace it
    found = [
        f"{module}:{node.lineno}"
        for module, path in MODULES.items()
        if module.startswith("facetrust.service")
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr in ("execute", "executemany", "executescript")
    ]
    assert found == []
