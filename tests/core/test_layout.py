"""The repository's shape: small modules (no shipped source file over 450 lines); the core's import contract
names every core module; no two parts of the package import each other, imports inside functions included."""
from __future__ import annotations

import ast
import re
import sys
from collections import defaultdict
from pathlib import Path
from typing import Dict, List, Set, Tuple

from tests.fixtures.paths import REPO

PARTS = ("jetseg", "jetson", "calibration", "engines", "benchmarks", "models", "training", "tools", "examples")
#: ``python -m jetseg`` runs the command line: the one module of the core that imports the CLI, by design.
ENTRY_POINTS = {"jetseg.__main__"}
MAX_LINES = 450


def test_no_shipped_source_file_is_over_450_lines():
    long = {}
    for part in PARTS:
        for path in (REPO / part).rglob("*.py"):
            lines = path.read_text(encoding="utf-8").count("\n")
            if lines > MAX_LINES:
                long[str(path.relative_to(REPO))] = lines
    assert not long, "split these modules (at most %d lines each): %s" % (MAX_LINES, long)


def test_the_core_contract_lists_every_core_module():
    text = (REPO / "pyproject.toml").read_text(encoding="utf-8")
    contract = text[text.index('name = "core imports no part above it"'):]
    listed = re.findall(r'"(jetseg\.\w+)"', contract[contract.index("source_modules"):contract.index("]")])
    core = {"jetseg." + p.stem for p in (REPO / "jetseg").glob("*.py")} - {"jetseg.__init__", "jetseg.__main__"}
    assert sorted(listed) == sorted(core), "pyproject's core contract: add %s, drop %s" % (
        sorted(core - set(listed)), sorted(set(listed) - core))


def _modules() -> Dict[str, Path]:
    """Every module of the installed package (setup.py's folder mapping) -> its file."""
    sys.path.insert(0, str(REPO / "tools"))
    try:
        from package_tree import folders
    finally:
        sys.path.pop(0)
    out = {}
    for folder, package in folders().items():
        for path in (REPO / folder).rglob("*.py"):
            rel = path.relative_to(REPO / folder).with_suffix("").parts
            name = ".".join((package,) + (rel[:-1] if rel[-1] == "__init__" else rel))
            if name not in ENTRY_POINTS:
                out[name] = path
    return out


def _imports(name: str, path: Path, known: Set[str]) -> Set[str]:
    """The package modules ``name`` imports anywhere in its file (inside functions too)."""
    here = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = here.split(".")[:len(here.split(".")) - node.level + 1]
                base = ".".join(parent + ([node.module] if node.module else []))
            targets = [base] + [base + "." + alias.name for alias in node.names]
        else:
            continue
        found.update(t for t in targets if t in known and t != name)
    return found


def _part_graph() -> Dict[str, Dict[str, Tuple[str, str]]]:
    """Part -> part it imports -> one (importer, imported) pair that shows it. A part is a package's own
    modules (its ``__init__`` and loose modules); each subpackage is a part of its own."""
    modules = _modules()
    packages = {name for name, path in modules.items() if path.name == "__init__.py"}

    def part(module: str) -> str:
        return module if module in packages else module.rpartition(".")[0]

    graph: Dict[str, Dict[str, Tuple[str, str]]] = defaultdict(dict)
    for name, path in modules.items():
        for target in _imports(name, path, set(modules)):
            if part(target) != part(name):
                graph[part(name)].setdefault(part(target), (name, target))
    return graph


def _cycle(graph: Dict[str, Dict[str, Tuple[str, str]]]) -> List[str]:
    """One cycle of the graph as a path of parts (empty when there is none)."""
    state: Dict[str, int] = {}
    stack: List[str] = []

    def visit(node: str) -> List[str]:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, {})):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state:
                found = visit(nxt)
                if found:
                    return found
        stack.pop()
        state[node] = 2
        return []

    for node in sorted(graph):
        if node not in state:
            found = visit(node)
            if found:
                return found
    return []


def test_no_two_parts_of_the_package_import_each_other():
    graph = _part_graph()
    cycle = _cycle(graph)
    shown = ["%s -> %s (%s imports %s)" % (a, b, *graph[a][b]) for a, b in zip(cycle, cycle[1:])]
    assert not cycle, "the parts import each other in a cycle: " + "; ".join(shown)


def test_the_cycle_check_sees_imports_inside_functions(tmp_path):
    graph = {"a": {"b": ("a.x", "b.y")}, "b": {"a": ("b.y", "a.x")}}
    assert _cycle(graph) == ["a", "b", "a"]
    module = tmp_path / "m.py"
    module.write_text("def f():\n    from jetseg.jetson.frames import slot\n", encoding="utf-8")
    assert _imports("jetseg.models.m", module, {"jetseg.jetson.frames.slot", "jetseg.jetson.frames"}) == {
        "jetseg.jetson.frames", "jetseg.jetson.frames.slot"}
