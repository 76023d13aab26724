"""The package's own imports, read from its source: no circle between its modules, and no module reaching
into another's private (``_name``) names. Imports inside functions are deliberate deferrals (heavy or optional
dependencies) and are not import-time edges; those at module level are."""

from __future__ import annotations

import ast
from pathlib import Path

import lightning_attn

PACKAGE = Path(lightning_attn.__file__).parent
NAME = "lightning_attn"


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in PACKAGE.rglob("*.py")}


def resolve(module: str, node: ast.ImportFrom) -> str:
    """The absolute module an ``ImportFrom`` names."""
    if not node.level:
        return node.module or ""
    is_package = MODULES[module].name == "__init__.py"
    base = module.split(".")[: len(module.split(".")) - node.level + (1 if is_package else 0)]
    return ".".join([*base, *([node.module] if node.module else [])])


def top_level_imports(module: str) -> list[tuple[str, list[str], int]]:
    """``(imported module, names, line)`` for every import at module level (not in a function or class)."""
    tree = ast.parse(MODULES[module].read_text(encoding="utf-8"))
    found = []
    for node in tree.body:
        if isinstance(node, ast.Import):
            found += [(a.name, [], node.lineno) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            target = resolve(module, node)
            names = [a.name for a in node.names]
            # `from .pkg import sub` imports the submodule sub: an edge to it
            subs = [f"{target}.{n}" for n in names if f"{target}.{n}" in MODULES]
            found += [(s, [], node.lineno) for s in subs]
            rest = [n for n in names if f"{target}.{n}" not in MODULES]
            if rest:
                found.append((target, rest, node.lineno))
    return found


def graph() -> dict[str, set[str]]:
    edges: dict[str, set[str]] = {m: set() for m in MODULES}
    for module in MODULES:
        for target, _, _ in top_level_imports(module):
            if target in MODULES and target != module:
                edges[module].add(target)
    return edges


def find_cycle(edges: dict[str, set[str]]) -> list[str] | None:
    """One circle of imports, as the list of modules around it; None when there is none."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(edges[node]):
            if state.get(nxt) == 1:
                return path[path.index(nxt) :] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        path.pop()
        state[node] = 2
        return None

    for start in sorted(edges):
        if start not in state and (cycle := visit(start)):
            return cycle
    return None


def test_the_package_has_no_circle_of_imports():
    edges = graph()
    assert f"{NAME}.tasks.base" in edges[f"{NAME}.tasks.registry"]  # the graph is read, not empty
    cycle = find_cycle(edges)
    assert cycle is None, "import circle: " + " -> ".join(cycle)


def test_the_cycle_finder_finds_a_circle():  # the test above must be able to fail
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_no_module_imports_another_modules_private_names():
    offences = []
    for module in MODULES:
        tree = ast.parse(MODULES[module].read_text(encoding="utf-8"))
        for node in ast.walk(tree):  # anywhere: a deferred import of a private name is still one
            if isinstance(node, ast.ImportFrom):
                target = resolve(module, node)
                if target.startswith(NAME) and target != module:
                    private = [a.name for a in node.names if a.name.startswith("_") and a.name != "__version__"]
                    offences += [f"{module}:{node.lineno} imports {target}.{n}" for n in private]
    assert not offences, "\n".join(offences)


def test_nothing_imports_the_cli():
    cli = f"{NAME}.cli"
    importers = []
    for module in MODULES:
        if module == f"{NAME}.__main__" or module == cli or module.startswith(f"{cli}."):
            continue  # the CLI's own rooms, and `python -m lightning_attn`
        for node in ast.walk(ast.parse(MODULES[module].read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom):
                target = resolve(module, node)
                if target == cli or target.startswith(f"{cli}."):
                    importers.append(f"{module}:{node.lineno}")
    assert not importers, importers
