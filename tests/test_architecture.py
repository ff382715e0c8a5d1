"""The shape of the package: data flows one way (docs STYLE.md, "the shape of the code"; issue #19).

Two checks over every module of ``src/floodwitness``:

* **No import cycles.** Statically (every import, lazy ones inside functions included), no module reaches
  itself again through its imports; and at run time every module imports on its own, first, in a fresh
  interpreter state (a cycle that only works in one import order fails there).
* **No stage imports a later one.** The stages below are the pipeline in order; a module may import its own
  package and the stages strictly before it, never one beside or after it.

A new violation fails here. The known ones wait in :data:`EXPECTED_VIOLATIONS`, each with why.
"""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "floodwitness"

#: The pipeline, earliest first: each entry is one rank; a name is a module or a package right under
#: ``floodwitness`` ("" is the package's own ``__init__``). Modules of one rank may not import each other.
STAGES: tuple[tuple[str, ...], ...] = (
    # shared by every stage, importing nothing of ours: the version, the error hierarchy, the normalized
    # request schema, and the helpers that make attacker-controlled text safe to print or write
    ("", "errors", "schema", "safe"),
    ("inputs",),  # files, decompression, lines
    ("formats",),  # detect and parse a line into the schema
    ("engine",),  # ibis over DuckDB or Spark: ingest runs its parse on it, analysis its queries
    ("ingest",),  # lines through a format into a Parquet store, with accounting
    ("enrich",),  # addresses to networks, countries, AS names (read by the analysis)
    ("analysis",),  # series, baselines, clients, phases
    ("detectors",),  # findings with evidence
    ("verdict",),  # findings weighed into attack / not an attack
    ("mitigation",),  # blocklist, rate limits, exports for enforcement points
    ("report",),  # the stages run over one dataset and assembled into the report, and the report's contract
    ("render",),  # terminal, Markdown, HTML views of a report (they read it through report.contract)
    ("watch", "simulate"),  # the live mode; the labelled-log simulator (neither imports the other)
    ("cli",),  # the thin shell on top
)

RANK: dict[str, int] = {name: rank for rank, names in enumerate(STAGES) for name in names}

#: (importing module, imported module) pairs that break the order today, with why; to be fixed in #19.
#: Keep it short: a fix removes its line (the test fails on a line that no longer matches anything).
EXPECTED_VIOLATIONS: dict[tuple[str, str], str] = {}

#: Import cycles known today, as the sorted modules of each, with why; to be fixed in #19.
EXPECTED_CYCLES: dict[tuple[str, ...], str] = {}


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def all_modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def imports_of(name: str, path: Path, known: set[str]) -> set[str]:
    """Every module of ours that ``name`` imports, anywhere in the file (lazy and TYPE_CHECKING imports too);
    ``from package import submodule`` counts as an import of the submodule."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            out |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                source = ".".join([*base, *([node.module] if node.module else [])])
            else:
                source = node.module or ""
            for alias in node.names:
                out.add(f"{source}.{alias.name}" if f"{source}.{alias.name}" in known else source)
    return {m for m in out if m == "floodwitness" or m.startswith("floodwitness.")}


def graph() -> dict[str, set[str]]:
    modules = all_modules()
    known = set(modules)
    return {name: imports_of(name, path, known) - {name} for name, path in modules.items()}


def stage_of(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def test_every_module_belongs_to_a_stage() -> None:
    unplaced = sorted({stage_of(m) for m in all_modules()} - set(RANK))
    assert not unplaced, f"place these in STAGES (tests/test_architecture.py): {unplaced}"


def test_no_stage_imports_a_later_one() -> None:
    found: dict[tuple[str, str], str] = {}
    for module, targets in graph().items():
        for target in targets:
            source, dest = stage_of(module), stage_of(target)
            if source != dest and RANK[dest] >= RANK[source]:
                found[(module, target)] = f"{source or 'floodwitness'} (rank {RANK[source]}) imports " \
                                          f"{dest or 'floodwitness'} (rank {RANK[dest]})"
    new = {k: v for k, v in found.items() if k not in EXPECTED_VIOLATIONS}
    fixed = sorted(set(EXPECTED_VIOLATIONS) - set(found))
    assert not new, "imports against the pipeline order:\n" + "\n".join(f"  {a} -> {b}: {why}"
                                                                        for (a, b), why in sorted(new.items()))
    assert not fixed, f"fixed, remove from EXPECTED_VIOLATIONS: {fixed}"


def cycles(edges: dict[str, set[str]]) -> list[tuple[str, ...]]:
    """The strongly connected components of more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[tuple[str, ...]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(edges.get(node, ())):
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
            if len(component) > 1:
                out.append(tuple(sorted(component)))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return out


def test_the_cycle_finder_finds_a_cycle() -> None:
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [("a", "b", "c")]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycles() -> None:
    found = set(cycles(graph()))
    new = sorted(found - set(EXPECTED_CYCLES))
    fixed = sorted(set(EXPECTED_CYCLES) - set(found))
    assert not new, "import cycles (lazy imports included):\n" + "\n".join(f"  {' <-> '.join(c)}" for c in new)
    assert not fixed, f"fixed, remove from EXPECTED_CYCLES: {fixed}"


_IMPORT_EACH = """
import importlib, json, sys, traceback
failed = {}
import floodwitness
print(json.dumps(floodwitness.__file__))
for name in json.loads(sys.argv[1]):
    for loaded in [m for m in sys.modules if m == "floodwitness" or m.startswith("floodwitness.")]:
        del sys.modules[loaded]
    try:
        importlib.import_module(name)
    except Exception:
        failed[name] = traceback.format_exc(limit=-3)
print(json.dumps(failed))
"""


def test_every_module_imports_first_on_its_own() -> None:
    """Each module imported first, with none of ours loaded (third-party modules stay cached, so the whole
    package takes one interpreter)."""
    names = sorted(all_modules())
    path = os.pathsep.join([str(PACKAGE.parent), *filter(None, [os.environ.get("PYTHONPATH")])])
    result = subprocess.run([sys.executable, "-c", _IMPORT_EACH, json.dumps(names)], capture_output=True,
                            text=True, check=False, cwd=PACKAGE.parents[1], timeout=600,
                            env={**os.environ, "PYTHONPATH": path})
    assert result.returncode == 0, result.stderr[-3000:]
    lines = result.stdout.strip().splitlines()
    assert Path(json.loads(lines[0])).parent == PACKAGE  # these sources, not an installed copy
    failed = json.loads(lines[-1])
    assert not failed, "\n".join(f"{name}:\n{trace}" for name, trace in failed.items())
