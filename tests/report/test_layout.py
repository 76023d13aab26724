"""The report package's layout: one concern a module, no import cycles, no module reaching into another's
private names, HTML escaping only where HTML is written."""

from __future__ import annotations

import ast
from pathlib import Path

import lightning_attn.report as report

PACKAGE = Path(report.__file__).parent


def _imports() -> dict[str, set[tuple[str, str]]]:
    """Module -> (report module it imports from, name) for every relative import inside the package."""
    out: dict[str, set[tuple[str, str]]] = {}
    for path in sorted(PACKAGE.glob("*.py")):
        found = out.setdefault(path.stem, set())
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.level == 1:
                for alias in node.names:
                    found.add((node.module, alias.name) if node.module else (alias.name, ""))
    return out


def test_no_module_imports_a_private_name_of_another():
    private = [
        (m, f"{source}.{name}") for m, found in _imports().items() for source, name in found if name.startswith("_")
    ]
    assert not private


def test_the_modules_import_each_other_without_cycles():
    graph = {m: {source for source, _ in found} for m, found in _imports().items() if m != "__init__"}
    done: set[str] = set()

    def visit(module: str, path: tuple[str, ...]) -> None:
        assert module not in path, " -> ".join((*path, module))
        if module in done:
            return
        for dependency in graph.get(module, ()):
            visit(dependency, (*path, module))
        done.add(module)

    for module in graph:
        visit(module, ())
    assert not any("analysis" in deps for deps in graph.values()) and "analysis" not in graph


def test_only_render_writes_html():
    escaping = {path.stem for path in PACKAGE.glob("*.py") if "import html" in path.read_text(encoding="utf-8")}
    assert escaping == {"render"}


def test_wording_decides_nothing():
    # the policy modules hand wording facts; wording depends on no policy module (only the statistics' record and
    # the report's closed vocabularies)
    assert {source for source, _ in _imports()["wording"]} <= {"significance", "kinds"}
