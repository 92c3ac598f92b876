"""The layer rule of docs/architecture.md: imports inside ``pawkit/`` only go down the layers.

Imports are read with ``ast`` (module level, inside functions and under ``TYPE_CHECKING``
alike — a local import is still a dependency), so the check needs no torch and cannot be
fooled by import order.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent / "pawkit"

# Lower number = lower layer. A module may import its own layer (no cycles) and any lower one.
LAYERS: list[tuple[str, int]] = [
    ("pawkit", 0),  # the package itself: __version__ and the lazy notebook API (modules named as strings, no import)
    ("pawkit.protocol", 0),
    ("pawkit.hookspecs", 1),
    ("pawkit.cache", 1),
    ("pawkit.own_random", 1),
    ("pawkit.config_files", 1),
    ("pawkit.config", 1),
    ("pawkit.config_reference", 1),
    ("pawkit.strategies", 1),
    ("pawkit.plugins", 2),
    ("pawkit.rollout", 3),
    ("pawkit.train", 4),
    ("pawkit.experiments", 5),
    ("pawkit.view", 5),  # the `pawkit view` page: reads run folders, never the trainer
    ("pawkit.cli", 6),
    ("pawkit.commands", 6),  # one module per larger command, registered by pawkit.cli
]


def layer_of(module: str) -> int:
    best = None
    for prefix, level in LAYERS:
        if module == prefix or module.startswith(prefix + "."):
            if best is None or len(prefix) > len(best[0]):
                best = (prefix, level)
    if best is None:
        raise AssertionError(f"{module} is in no layer: add it to LAYERS and to docs/architecture.md")
    return best[1]


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def pawkit_imports(path: Path, graph_nodes: set[str]) -> set[str]:
    """Every ``pawkit...`` module that ``path`` imports (``from pawkit import x`` → pawkit.x if a module)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.split(".")[0] == "pawkit")
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0 and node.module.split(".")[0] == "pawkit":
            for alias in node.names:
                sub = f"{node.module}.{alias.name}"
                found.add(sub if sub in graph_nodes else node.module)
    return found


def import_graph() -> dict[str, set[str]]:
    paths = sorted(ROOT.rglob("*.py"))
    nodes = {module_name(p) for p in paths}
    return {module_name(p): pawkit_imports(p, nodes) - {module_name(p)} for p in paths}


def test_every_module_is_in_a_layer():
    for module in import_graph():
        layer_of(module)


def test_imports_only_go_down_the_layers():
    upward = [
        f"{module} (layer {layer_of(module)}) imports {target} (layer {layer_of(target)})"
        for module, targets in import_graph().items()
        for target in sorted(targets)
        if layer_of(target) > layer_of(module)
    ]
    assert upward == []


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}  # 1 = on the stack, 2 = done
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in graph:
                continue
            if state.get(nxt) == 1:
                return stack[stack.index(nxt) :] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_no_import_cycles():
    cycle = find_cycle(import_graph())
    assert cycle is None, " -> ".join(cycle or [])


def test_the_checks_catch_what_they_claim():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None
    assert layer_of("pawkit.train.trainer") > layer_of("pawkit.rollout.run") > layer_of("pawkit.plugins")
    with pytest.raises(AssertionError, match="in no layer"):
        layer_of("pawkit_somewhere_else")


def test_plugin_packages_never_import_the_training_loop():
    """adapters/ and plugins/ are written like third-party packages: plugin-author modules only."""
    allowed = {"pawkit.protocol", "pawkit.hookspecs", "pawkit.strategies", "pawkit.config", "pawkit.plugins", "pawkit.cache", "pawkit.own_random", "pawkit"}
    bad = []
    for folder in ("adapters", "plugins"):
        for path in sorted((ROOT.parent / folder).rglob("*.py")):
            for target in pawkit_imports(path, set()):
                if target not in allowed:
                    bad.append(f"{path.relative_to(ROOT.parent)} imports {target}")
    assert bad == []


def test_no_module_is_over_400_lines():
    long = {module_name(p): n for p in ROOT.rglob("*.py") if (n := len(p.read_text().splitlines())) > 400}
    assert long == {}
