"""The package's modules import one another without cycles (module-level and deferred imports alike),
and the layers keep their direction: models <- inference <- analysis <- bayesvae (application)."""

from __future__ import annotations

import ast
import importlib.util
from pathlib import Path

import bayesvae

PACKAGES = {"bayesvae.models": "models", "bayesvae.inference": "inference", "bayesvae.analysis": "analysis"}
LAYER = {"bayesvae.models": 0, "bayesvae.inference": 1, "bayesvae.analysis": 2}


def module_files() -> dict[str, Path]:
    """Module name -> source file of every module of the installed package (sub-packages mapped by setuptools)."""
    found = {}
    roots = {"bayesvae": Path(bayesvae.__file__).parent}
    for name in PACKAGES:
        roots[name] = Path(importlib.util.find_spec(name).origin).parent
    for package, root in roots.items():
        for path in root.rglob("*.py"):
            parts = path.relative_to(root).with_suffix("").parts
            if package == "bayesvae" and parts[0] in ("models", "inference", "analysis"):
                continue
            name = ".".join((package, *parts))
            found[name.removesuffix(".__init__")] = path
    return found


def imports_of(name: str, path: Path, modules: set[str]) -> set[str]:
    """The package modules ``name`` imports anywhere in its source (absolute or relative)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    targets = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            candidates = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            candidates = [base] + [f"{base}.{alias.name}" for alias in node.names]
        else:
            continue
        targets |= {c for c in candidates if c in modules and c != name}
    return targets


def graph() -> dict[str, set[str]]:
    files = module_files()
    return {name: imports_of(name, path, set(files)) for name, path in files.items()}


def find_cycle(edges: dict[str, set[str]]) -> list[str] | None:
    state, stack = {}, []

    def visit(node):
        state[node] = "open"
        stack.append(node)
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == "open":
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        state[node] = "done"
        stack.pop()
        return None

    for node in sorted(edges):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_the_graph_sees_the_package():
    edges = graph()
    assert "bayesvae.posterior" in edges and "bayesvae.models.build" in edges
    assert "bayesvae.posterior" in edges["bayesvae.diagnose_api"]
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]   # the finder finds one


def test_no_import_cycles():
    assert find_cycle(graph()) is None, " -> ".join(find_cycle(graph()))


def test_imports_flow_one_way_between_layers():
    def layer(name):
        return next((v for k, v in LAYER.items() if name == k or name.startswith(k + ".")), 3)

    upward = [(a, b) for a, targets in graph().items() for b in targets if layer(b) > layer(a)]
    assert not upward, upward
