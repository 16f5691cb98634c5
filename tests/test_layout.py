"""The package layout: data flows one way, so no module imports a later stage and no
import cycle exists. Read from the modules' own import statements (function-level imports
included, ``if TYPE_CHECKING:`` blocks left out), not from a list kept by hand."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# The stages in the order data flows: a module may import its own stage or an earlier one.
STAGES = [
    (
        "allocator.errors",
        "allocator.version",
        "allocator._compat",
        "allocator.cells",
        "allocator.numbers",
    ),
    ("allocator.scenario",),
    ("allocator.lp",),
    ("allocator.solvers",),
    ("allocator.plan",),
    ("allocator.analysis",),
    ("allocator.engine",),
    ("allocator.workflows",),
    ("allocator.operations",),  # plan -> scheduler quotas, usage read back
    ("allocator.cli", "allocator.__main__"),
    ("allocator",),  # the public API re-exports every stage
    ("api",),
    ("benchmarks",),
]
# One adapter per solver: none imports another; registry.py knows them all.
ADAPTERS = {f"allocator.solvers.{m}" for m in ("highs", "rowgen", "clp", "pulp")}
# ``allocator bench`` is a thin entry to the harness of a source checkout (loaded on call).
THIN_ENTRIES = {("allocator.cli.bench", "benchmarks.harness")}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def stage(module: str) -> int:
    best, rank = -1, None
    for i, prefixes in enumerate(STAGES):
        for p in prefixes:
            if (module == p or module.startswith(p + ".")) and len(p) > best:
                best, rank = len(p), i
    assert rank is not None, f"{module} belongs to no stage: add it to STAGES"
    return rank


def _type_checking(node: ast.If) -> bool:
    t = node.test
    return (isinstance(t, ast.Name) and t.id == "TYPE_CHECKING") or (
        isinstance(t, ast.Attribute) and t.attr == "TYPE_CHECKING"
    )


def imports_of(path: Path, modules: set[str]) -> set[str]:
    """The project modules ``path`` imports at run time. ``from a.b import c`` names the
    module a.b.c when that is a module, else a.b."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _type_checking(node):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            for a in node.names:
                sub = f"{target}.{a.name}"
                found.add(sub if sub in modules else target)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(ast.parse(path.read_text(encoding="utf-8")))
    return {m for m in found if m in modules and m != name}


def graph() -> dict[str, set[str]]:
    paths = [
        p for d in ("allocator", "api", "benchmarks") for p in sorted((ROOT / d).rglob("*.py"))
    ]
    modules = {module_name(p) for p in paths}
    return {module_name(p): imports_of(p, modules) for p in paths}


def cycles(g: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []

    def strong(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in g.get(v, ()):
            if w not in index:
                strong(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(g):
        if v not in index:
            strong(v)
    return out


def test_no_import_cycles() -> None:
    assert cycles(graph()) == []


def test_no_stage_imports_a_later_one() -> None:
    upward = [
        f"{m} (stage {stage(m)}) imports {t} (stage {stage(t)})"
        for m, targets in graph().items()
        for t in sorted(targets)
        if stage(t) > stage(m) and (m, t) not in THIN_ENTRIES
    ]
    assert upward == []


def test_no_solver_adapter_imports_another() -> None:
    g = graph()
    crossed = [f"{a} imports {t}" for a in sorted(ADAPTERS) for t in g[a] if t in ADAPTERS]
    assert crossed == []


def test_the_library_does_not_import_the_service_or_the_benchmarks() -> None:
    g = graph()
    bad = [
        f"{m} imports {t}"
        for m, targets in g.items()
        if m.startswith("allocator")
        for t in targets
        if t.split(".")[0] in ("api", "benchmarks") and (m, t) not in THIN_ENTRIES
    ]
    assert bad == []


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        # the checks themselves catch what they are for
        ({"a": {"b"}, "b": {"c"}, "c": {"a"}}, [["a", "b", "c"]]),
        ({"a": {"b"}, "b": set()}, []),
    ],
)
def test_cycle_finder(source: dict[str, set[str]], expected: list[list[str]]) -> None:
    assert cycles(source) == expected


def test_an_upward_import_is_seen(tmp_path: Path) -> None:
    (tmp_path / "m.py").write_text(
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from allocator.plan import Plan\n"
        "def f():\n    from allocator.engine import solve\n"
    )
    global ROOT
    saved, ROOT = ROOT, tmp_path
    try:
        found = imports_of(tmp_path / "m.py", {"allocator.engine", "allocator.plan"})
    finally:
        ROOT = saved
    assert found == {"allocator.engine"}  # the function-level one counts, TYPE_CHECKING not


def test_old_module_paths_still_import() -> None:
    """Documented paths from before the layout keep working, as the same module objects."""
    import allocator.batch
    import allocator.export
    from allocator.analysis.counterfactuals import seeds_case
    from allocator.whatif import Overrides

    import allocator.solvers.export
    import allocator.workflows.batch
    from allocator.workflows.counterfactuals import seeds_case as new_seeds_case

    assert allocator.batch is allocator.workflows.batch
    assert seeds_case is new_seeds_case
    assert Overrides.__module__ == "allocator.scenario.overrides"
    assert allocator.export.lp_format_name is allocator.solvers.export.lp_format_name
