"""The package's structure: no import circle, no function longer than 60 lines.

Loaders import the model, never the other way round; Hub names and downloads
live low (hub.py). The graph counts every import of a package module, at the
top of a file or inside a function, so a lazy import cannot hide a circle.
"""

from __future__ import annotations

import ast
from pathlib import Path

import gpt_from_scratch

PACKAGE = Path(gpt_from_scratch.__file__).resolve().parent
MAX_FUNCTION_LINES = 60
# Function-level imports of package modules that are allowed to close a circle, with their reason.
# (None today: keep it that way.)
ALLOWED_BACK_EDGES: dict[tuple[str, str], str] = {}


def modules() -> dict[str, ast.Module]:
    return {p.stem: ast.parse(p.read_text(encoding="utf-8")) for p in sorted(PACKAGE.glob("*.py"))}


def imported_modules(name: str, tree: ast.Module, known: set[str]) -> set[str]:
    """The package modules that `name` imports, anywhere in the file."""
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level == 1:  # from .x import y, or from . import x
                targets = [node.module] if node.module else [a.name for a in node.names]
            elif node.level == 0 and (node.module or "").startswith("gpt_from_scratch"):
                rest = node.module.split(".")[1:]
                targets = rest[:1] or [a.name for a in node.names]
            else:
                continue
        elif isinstance(node, ast.Import):
            targets = [a.name.split(".")[1] for a in node.names if a.name.startswith("gpt_from_scratch.")]
        else:
            continue
        out.update(t.split(".")[0] for t in targets if t and t.split(".")[0] in known)
    out.discard(name)
    return out


def import_graph() -> dict[str, set[str]]:
    trees = modules()
    known = set(trees) - {"__init__", "__main__"}
    graph = {name: imported_modules(name, tree, known) for name, tree in trees.items() if name in known}
    for edge in ALLOWED_BACK_EDGES:
        graph[edge[0]].discard(edge[1])
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import circle as a path [a, b, ..., a], or None."""
    state: dict[str, str] = {}

    def visit(node: str, path: list[str]) -> list[str] | None:
        state[node] = "open"
        for nxt in sorted(graph[node]):
            if state.get(nxt) == "open":
                return path[path.index(nxt):] + [nxt] if nxt in path else path + [nxt]
            if nxt not in state and (cycle := visit(nxt, path + [nxt])):
                return cycle
        state[node] = "done"
        return None

    for start in sorted(graph):
        if start not in state and (cycle := visit(start, [start])):
            return cycle
    return None


def test_the_cycle_finder_finds_a_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set(), "c": {"a"}}) is None


def test_the_graph_sees_function_level_imports():
    tree = ast.parse("def f():\n    from .model import GPT\n    import gpt_from_scratch.data\n")
    assert imported_modules("x", tree, {"model", "data"}) == {"model", "data"}


def test_the_package_has_no_import_circle():
    graph = import_graph()
    assert "model" in graph and "hub" in graph
    assert find_cycle(graph) is None, " -> ".join(find_cycle(graph))


def test_model_and_tokenizers_know_nothing_of_the_loaders():
    graph = import_graph()
    for low in ("model", "bpe", "tokenizer", "hub"):
        assert "pretrained" not in graph[low], low


def test_no_function_is_longer_than_60_lines():
    long = []
    for name, tree in modules().items():
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                n = node.end_lineno - node.lineno + 1
                if n > MAX_FUNCTION_LINES:
                    long.append(f"{name}.py:{node.lineno} {node.name} ({n} lines)")
    assert not long, long
