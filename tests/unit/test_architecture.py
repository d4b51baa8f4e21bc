"""The package's shape, checked: no import cycles (lazy imports included, those under
TYPE_CHECKING excluded, and a package's __init__ counted as part of importing any of its
modules, as Python runs it), no module over 600 lines, every study registered once."""

from __future__ import annotations

import ast
from pathlib import Path

import pgvbench
from pgvbench.studies.base import Study
from pgvbench.studies.registry import REGISTRY, studies_for

ROOT = Path(pgvbench.__file__).parent
MAX_LINES = 600


def _modules() -> dict[str, Path]:
    out = {}
    for path in ROOT.rglob("*.py"):
        parts = path.relative_to(ROOT.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[name] = path
    return out


def _imports(tree: ast.AST) -> list[ast.Import | ast.ImportFrom]:
    found: list[ast.Import | ast.ImportFrom] = []

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If):
            test = node.test
            if (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
                isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
            ):
                for child in node.orelse:
                    visit(child)
                return
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            found.append(node)
            return
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return found


def _graph() -> dict[str, set[str]]:
    mods = _modules()
    graph: dict[str, set[str]] = {name: set() for name in mods}
    for name, path in mods.items():
        is_pkg = path.name == "__init__.py"
        for node in _imports(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            else:
                if node.level:
                    base = name.split(".") if is_pkg else name.split(".")[:-1]
                    base = base[: len(base) - (node.level - 1)]
                    prefix = ".".join([*base, *([node.module] if node.module else [])])
                else:
                    prefix = node.module or ""
                targets = [
                    f"{prefix}.{a.name}" if f"{prefix}.{a.name}" in mods else prefix
                    for a in node.names
                ]
            for target in targets:
                if target in mods and target != name:
                    graph[name].add(target)
                    # importing a.b.c first runs a/__init__ and a/b/__init__ (unless they
                    # are this module's own packages, already running): a package that
                    # re-exports its submodules is part of every import of them
                    own = _ancestors(name)
                    graph[name].update(p for p in _ancestors(target) if p in mods and p not in own)
    return graph


def _ancestors(name: str) -> list[str]:
    parts = name.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts))]


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = [0]

    def strong(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                strong(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in graph:
        if v not in index:
            strong(v)
    return found


def test_no_import_cycles() -> None:
    assert _cycles(_graph()) == []


def test_the_cycle_check_finds_a_cycle() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert _cycles(graph) == [["a", "b", "c"]]


def test_no_module_over_the_size_limit() -> None:
    sizes = {
        name: len(path.read_text(encoding="utf-8").splitlines())
        for name, path in _modules().items()
    }
    assert {name: n for name, n in sizes.items() if n > MAX_LINES} == {}


def test_every_study_is_registered_once_under_its_table_name() -> None:
    # once per experiment kind: [filtered] has one study for agent data and one for vector
    # data (same table and code, results and report in each kind's own part)
    for kind in ("vector", "agents"):
        names = [study.name for study in studies_for(kind)]
        assert len(names) == len(set(names)), kind
    assert all(isinstance(study, Study) for study in REGISTRY)
    packages = {p.parent.name for p in (ROOT / "studies").glob("*/__init__.py")}
    modules = {type(study).__module__.split(".")[2] for study in REGISTRY}
    assert modules == packages  # a study package left out of the registry would never run
    assert {s.name for s in studies_for("vector")} == {
        "filtered",
        "build_tuning",
        "cache",
        "result_cache",
        "quantization",
        "capacity",
        "tune",
    }
    assert {s.name for s in studies_for("agents")} == {"filtered", "drift", "replicas"}
    for study in REGISTRY:
        assert study.section in ("tuning", "agent")
        assert study.stage in ("before", "after")


def test_test_files_have_unique_basenames() -> None:
    """pytest imports tests/unit and tests/integration into one namespace (no __init__.py):
    two files of one name stop the whole suite at collection (it happened twice)."""
    tests = Path(__file__).resolve().parents[1]
    seen: dict[str, Path] = {}
    clashes = []
    for path in sorted(tests.rglob("test_*.py")):
        if path.name in seen:
            clashes.append(f"{seen[path.name].relative_to(tests)} and {path.relative_to(tests)}")
        seen.setdefault(path.name, path)
    assert not clashes, "same test file name twice: " + "; ".join(clashes)
