"""The package's layers hold: the pytest layer, the framework-neutral engine
and the framework adapters import each other only in the allowed directions.

Every import statement counts, lazy ones inside functions too (they run
sooner or later); imports under ``if TYPE_CHECKING:`` do not.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "pytest_softmax"
FRAMEWORKS = {"keras", "tensorflow", "h5py", "jax", "torch", "onnx", "onnxruntime", "tf_keras"}
HEAVY = {"numpy", "hypothesis"} | FRAMEWORKS
MAX_TOP_LEVEL_MODULES = 10


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def runtime_imports(path: Path, *, typing_too: bool = False) -> Iterator[tuple[str, bool]]:
    """(module, is_internal) for every import outside TYPE_CHECKING blocks
    (and inside them too with ``typing_too``)."""
    tree = ast.parse(path.read_text())
    skipped = set() if typing_too else {
        id(n) for node in ast.walk(tree)
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)
        for sub in node.body for n in ast.walk(sub)}
    package = module_name(path).split(".")
    if path.name != "__init__.py":
        package = package[:-1]
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, alias.name.startswith("pytest_softmax")
        elif isinstance(node, ast.ImportFrom) and node.level:
            base = ".".join(package[: len(package) - node.level + 1])
            if node.module:
                yield f"{base}.{node.module}", True
            else:
                yield from ((f"{base}.{alias.name}", True) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            yield node.module, node.module.startswith("pytest_softmax")


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def internal_edges(name: str, *, typing_too: bool = False) -> set[str]:
    edges = set()
    for target, internal in runtime_imports(MODULES[name], typing_too=typing_too):
        while internal and target and target not in MODULES:
            target = target.rpartition(".")[0]
        if internal and target and target != name:
            edges.add(target)
    return edges


def external(name: str) -> set[str]:
    return {target.split(".")[0] for target, internal in runtime_imports(MODULES[name]) if not internal}


def test_the_package_has_no_import_cycle() -> None:
    graph = {name: internal_edges(name) for name in MODULES}
    state: dict[str, str] = {}
    cycle: list[str] = []

    def visit(node: str, trail: list[str]) -> bool:
        state[node] = "open"
        for nxt in sorted(graph[node]):
            if state.get(nxt) == "open":
                cycle.extend(trail[trail.index(nxt):] + [node, nxt] if nxt in trail else [node, nxt])
                return True
            if nxt not in state and visit(nxt, [*trail, node]):
                return True
        state[node] = "done"
        return False

    assert not any(visit(n, []) for n in sorted(graph) if n not in state), f"import cycle: {' -> '.join(cycle)}"


@pytest.mark.parametrize("name", sorted(MODULES))
def test_frameworks_are_imported_only_under_adapters(name: str) -> None:
    if ".adapters." in f"{name}.":
        return
    assert external(name) & FRAMEWORKS == set()


@pytest.mark.parametrize("name", sorted(MODULES))
def test_no_module_imports_pytest_beside_the_engine_libraries(name: str) -> None:
    imported = external(name)
    if imported & {"pytest", "_pytest"}:
        assert imported & HEAVY == set()


@pytest.mark.parametrize("name", sorted(n for n in MODULES if n.startswith("pytest_softmax.plugin")))
def test_the_pytest_layer_reaches_the_engine_only_lazily_or_through_plain_data(name: str) -> None:
    """At import, the pytest layer may use the standard-library modules of the
    engine (settings, tolerance, report data) and the adapter registry, never
    the numpy/Hypothesis part."""
    tree = ast.parse(MODULES[name].read_text())
    top_level = [n for n in tree.body if isinstance(n, ast.ImportFrom) and n.level]
    allowed = ("plugin", "settings", "tolerance", "errors", "core.report", "core.kinds", "adapters.registry",
               "adapters.base")
    for node in top_level:
        module = node.module or ""
        assert module.lstrip(".").startswith(allowed) or node.level == 1, ast.unparse(node)


def test_the_layers_show_in_the_tree() -> None:
    top_level = sorted(p.name for p in PACKAGE.glob("*.py"))
    assert len(top_level) <= MAX_TOP_LEVEL_MODULES, top_level
    assert {p.name for p in PACKAGE.iterdir() if p.is_dir() and p.name != "__pycache__"} >= {
        "plugin", "core", "adapters"}
    assert {p.name for p in (PACKAGE / "adapters").iterdir() if p.is_dir() and p.name != "__pycache__"} == {
        "base", "keras", "torch"}


@pytest.mark.parametrize("name", sorted(n for n in MODULES if n.startswith("pytest_softmax.adapters.")))
def test_adapters_stand_on_the_contract_alone(name: str) -> None:
    """An adapter imports from the package only the contract (``adapters.base``)
    and its own framework folder, type-checking imports included: what a
    framework exchanges with the engine belongs to the contract, so a second
    framework is written against one module."""
    own_folder = name.split(".")[2]
    for target in internal_edges(name, typing_too=True):
        if own_folder == "base" and target == "pytest_softmax.errors":
            continue  # the contract re-exports the exceptions adapters raise
        assert target.startswith("pytest_softmax.adapters."), f"{name} imports {target}: not the contract"
        assert own_folder == "registry" or target.split(".")[2] in {"base", own_folder}, (
            f"{name} imports {target}: one framework folder imports another")
