"""The package layout shows the two flows (issue 11): stage packages, no import cycles, imports
pointing one way between packages (issue 17), small modules, a docstring each, click only in cli/."""

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
# The direction between packages (issue 17): a module imports its own package or one of a
# lower rank, never a higher rank nor another package of its own rank. "" is the package root
# (the lazy public API), ranked with api. The engine ranks above models: it opens the model
# files models/ resolves and checks (check_gguf_file); models/ knows nothing of engines;
# opening the engine a ModelSpec names (solving.loading) and the doctor (cli.diagnostics) sit above
# both. evaluation scores solving's Results; output renders them and
# writes the JSON of every typed record (a Result, an eval record, a summary: one place for
# the JSON forms, issue 17), so it ranks above evaluation, whose records it writes.
RANKS = {"__main__": 8, "cli": 7,
         "api": 6, "": 6,
         "output": 5,
         "evaluation": 4,
         "solving": 3,
         "engine": 2, "answers": 2,
         "models": 1,
         "config": 0, "errors": 0}
# Imports against the direction that stay for now, each with its reason. A test fails when
# one is no longer needed, so this list only shrinks.
UPWARD_EXCEPTIONS = {
    ("mathsolve.solving.solve", "mathsolve.output.records"):
        "Result.to_json (issue 25: one Result type): its JSON is made in output/records.py alone, "
        "imported when to_json is called, so solving loads nothing of output",
    ("mathsolve.engine.remote.transport", "mathsolve"):
        "the User-Agent names __version__, which lives in the package root; the root imports "
        "nothing eagerly (PEP 562), so this pulls in no higher layer",
}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PKG.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {module_name(p): p for p in sorted(PKG.rglob("*.py"))}


def runtime_nodes(tree: ast.AST) -> list[ast.AST]:
    """Every node of `tree` but those under `if TYPE_CHECKING:` (imports for annotations only,
    which never run)."""
    out: list[ast.AST] = []
    todo = [tree]
    while todo:
        node = todo.pop()
        out.append(node)
        if isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING":
            todo.extend(node.orelse)
            continue
        todo.extend(ast.iter_child_nodes(node))
    return out


def imports_of(path: Path) -> set[str]:
    """Every mathsolve module `path` imports at run time, at module level or inside a function."""
    found: set[str] = set()
    for node in runtime_nodes(ast.parse(path.read_text(encoding="utf-8"))):
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


def package_of(module: str) -> str:
    """mathsolve -> "", mathsolve.api -> "api", mathsolve.cli.run -> "cli"."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def against_the_direction(graph: dict[str, set[str]]) -> set[tuple[str, str]]:
    """The (importer, imported) pairs that point up, or sideways into a sibling package."""
    found = set()
    for name, imported in graph.items():
        here = package_of(name)
        for other in imported:
            there = package_of(other)
            if there != here and RANKS[there] >= RANKS[here]:
                found.add((name, other))
    return found


def test_every_package_has_a_rank():
    assert set(RANKS) == set(STAGES) | TOP_LEVEL - {"__init__"} | {""}
    assert {package_of(name) for name in MODULES} <= set(RANKS)


def test_imports_point_down_the_layers():
    graph = {name: imports_of(path) for name, path in MODULES.items()}
    wrong = against_the_direction(graph)
    unexplained = sorted(wrong - set(UPWARD_EXCEPTIONS))
    assert not unexplained, "imports against the layers (cli -> api -> output -> evaluation -> " \
        "solving -> engine / answers -> models -> config, errors): " + \
        ", ".join(f"{a} -> {b}" for a, b in unexplained)
    stale = sorted(set(UPWARD_EXCEPTIONS) - wrong)
    assert not stale, f"no longer needed, remove from UPWARD_EXCEPTIONS: {stale}"


@pytest.mark.parametrize(("importer", "imported", "allowed"), [
    ("mathsolve.cli.run", "mathsolve.api", True),
    ("mathsolve.solving.solve", "mathsolve.engine.local.samples", True),
    ("mathsolve.solving.loading", "mathsolve.models.cache", True),
    ("mathsolve.engine.local.engine", "mathsolve.engine.protocol", True),  # inside one package
    ("mathsolve.models.cache", "mathsolve.engine.local.engine", False),  # up
    ("mathsolve.output.render", "mathsolve.api", False),  # up
    ("mathsolve.config", "mathsolve.errors", False),  # sideways: siblings
    ("mathsolve.evaluation.metrics", "mathsolve.output.render", False),  # up
    ("mathsolve.engine.local.engine", "mathsolve.answers.vote", False),  # sideways
], ids=["cli-api", "solving-engine", "loading-models", "same-package", "models-engine",
        "output-api", "config-errors", "evaluation-output", "engine-answers"])
def test_the_direction_check_sees_a_wrong_import(importer, imported, allowed):
    assert (not against_the_direction({importer: {imported}})) == allowed


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


ENGINE = PKG / "engine"
LOCAL = {name for name in MODULES if name.startswith("mathsolve.engine.local")}
REMOTE = {name for name in MODULES if name.startswith("mathsolve.engine.remote")}


def test_the_engine_is_split_by_backend():
    """engine/ holds what both backends share (issue 25): the protocol and the data they hand
    out, and the stream splitter; local/ is llama.cpp, remote/ an OpenAI-compatible server."""
    assert {p.stem for p in ENGINE.glob("*.py")} == {"__init__", "protocol", "stream"}
    assert {"mathsolve.engine.local.engine", "mathsolve.engine.local.scheduler", "mathsolve.engine.local.kv",
            "mathsolve.engine.local.context", "mathsolve.engine.local.sampling"} <= LOCAL
    assert {"mathsolve.engine.remote.server", "mathsolve.engine.remote.sse", "mathsolve.engine.remote.chat"} <= REMOTE


@pytest.mark.parametrize("module", sorted(REMOTE | {"mathsolve.engine.protocol", "mathsolve.engine.stream"}))
def test_the_server_engine_and_the_shared_types_import_nothing_of_the_local_engine(module):
    """The data both engines hand out lives in engine/protocol.py (issue 17): the server engine
    reaches llama.cpp's engine through nothing, not even its types."""
    assert not imports_of(MODULES[module]) & LOCAL


@pytest.mark.parametrize("module", sorted(LOCAL))
def test_the_local_engine_imports_nothing_of_the_server_engine(module):
    assert not imports_of(MODULES[module]) & REMOTE
