"""The package layout shows the two flows (issue 11): stage packages, no import cycles, small
modules, a docstring each, click only in cli/."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parent.parent / "mathsolve"
# Each stage package and the label its modules' docstrings start with.
STAGES = {"cli": "Command line", "solving": "Solve flow", "engine": "Engine", "answers": "Answers",
          "output": "Output", "models": "Model flow", "evaluation": "Evaluation"}
TOP_LEVEL = {"__init__", "__main__", "api", "config", "errors"}
MAX_LINES = 430  # "about 400": the two longest modules are 414 and 426 lines


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PKG.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {module_name(p): p for p in sorted(PKG.rglob("*.py"))}


def imports_of(path: Path) -> set[str]:
    """Every mathsolve module `path` imports, at module level or inside a function."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [f"{node.module}.{a.name}" if f"{node.module}.{a.name}" in MODULES
                     else node.module for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            raise AssertionError(f"{path}: relative import; import mathsolve.<stage>.<module>")
        else:
            continue
        found.update(n for n in names if n in MODULES)
    return found


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}  # 1: on the stack, 2: done
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_the_import_graph_is_acyclic():
    graph = {name: imports_of(path) - {name} for name, path in MODULES.items()}
    assert sum(len(v) for v in graph.values()) > 50  # the walk sees the real imports
    assert find_cycle(graph) is None, " -> ".join(find_cycle(graph) or [])


def test_the_cycle_finder_finds_a_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": set()}) is None


def test_modules_sit_in_their_stage_packages():
    top = {p.stem for p in PKG.glob("*.py")}
    packages = {p.name for p in PKG.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    assert top == TOP_LEVEL
    assert packages == set(STAGES)


@pytest.mark.parametrize("name", sorted(MODULES))
def test_each_module_is_small_and_says_its_stage(name):
    path = MODULES[name]
    lines = path.read_text(encoding="utf-8").count("\n")
    assert lines <= MAX_LINES, f"{path} has {lines} lines"
    doc = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8")))
    assert doc, f"{path} has no docstring"
    first = doc.splitlines()[0]
    assert first.endswith(".") and len(first) <= 100, f"{path}: {first!r}"
    stage = name.split(".")[1] if name.count(".") else None
    if stage in STAGES:
        assert first.startswith(STAGES[stage] + ":"), f"{path}: {first!r} names no stage"


def test_only_the_cli_imports_click():
    users = {name for name, path in MODULES.items()
             if "click" in {n.split(".")[0] for n in _all_imports(path)}}
    assert users and all(name.startswith("mathsolve.cli") for name in users), users


def _all_imports(path: Path) -> set[str]:
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            out.add(node.module)
    return out
