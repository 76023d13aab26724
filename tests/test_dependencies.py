"""pyproject.toml is honest: every third-party module the package imports is declared, an extra's packages are
imported only inside the functions that need them (so the default install imports), the heavy optional
packages stay out of the default install, ruff is pinned; and a missing extra is one line that says how to
install it."""

from __future__ import annotations

import ast
import functools
import re
import sys
from importlib.metadata import PackageNotFoundError, packages_distributions, version
from importlib.metadata import distributions as metadata_distributions
from pathlib import Path

import pytest

import lightning_attn
from lightning_attn.cli import main

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10: tomli, which nox (the dev extra) depends on there
    import tomli as tomllib

PACKAGE = Path(lightning_attn.__file__).parent
PYPROJECT = PACKAGE.parent / "pyproject.toml"


def normalized(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def requirement_name(requirement: str) -> str:
    return normalized(re.match(r"[A-Za-z0-9][A-Za-z0-9._-]*", requirement)[0])


def project() -> dict:
    if not PYPROJECT.is_file():
        pytest.skip("needs the repository's pyproject.toml (not an installed wheel)")
    return tomllib.loads(PYPROJECT.read_text(encoding="utf-8"))["project"]


def imports() -> dict[str, list[tuple[str, bool]]]:
    """Third-party top-level module -> ``(where, at module level?)`` for each import of it in the package."""
    found: dict[str, list[tuple[str, bool]]] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        top = {id(node) for node in tree.body}
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                modules = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                modules = [node.module]
            else:
                continue
            for module in modules:
                name = module.split(".")[0]
                if name not in sys.stdlib_module_names and name != "lightning_attn":
                    where = f"{path.relative_to(PACKAGE.parent)}:{node.lineno}"
                    found.setdefault(name, []).append((where, id(node) in top))
    return found


@functools.cache
def providers() -> dict[str, list[str]]:
    """Top-level module -> the installed distributions that provide it (a scan of every installed one)."""
    return packages_distributions()


def distributions(module: str) -> set[str]:
    """The distributions that provide ``module``; for one not installed here, a distribution of its name."""
    names = providers().get(module)
    if names is None:  # Python 3.10 reads only top_level.txt, which wheels not built by setuptools lack (sklearn's)
        installed = re.compile(rf"^{re.escape(module)}/", re.M)
        names = [d.metadata["Name"] for d in metadata_distributions() if installed.search(d.read_text("RECORD") or "")]
    return {normalized(d) for d in names or [module]}


def test_every_imported_third_party_module_is_declared():
    declared = project()
    default = {requirement_name(r) for r in declared["dependencies"]}
    extras = {requirement_name(r) for group in declared["optional-dependencies"].values() for r in group}
    found = imports()
    assert {"torch", "optuna", "mlflow", "sqlalchemy", "yaml", "sklearn"} <= set(found)  # the scan reads the package
    undeclared = [
        f"{m} ({', '.join(sorted(distributions(m)))}), imported at {found[m][0][0]}"
        for m in sorted(found)
        if not distributions(m) & (default | extras)
    ]
    assert not undeclared, "imported but not declared in pyproject.toml:\n" + "\n".join(undeclared)
    # an extra's package is imported where it is used, never at module level: the default install must import
    at_import = [
        f"{m} at {where}"
        for m in sorted(found)
        if not distributions(m) & default
        for where, top_level in found[m]
        if top_level
    ]
    assert not at_import, "an extra's package imported at module level:\n" + "\n".join(at_import)


def test_the_default_install_leaves_out_what_one_command_or_the_tests_need():
    declared = project()
    default = {requirement_name(r) for r in declared["dependencies"]}
    extras = declared["optional-dependencies"]
    assert "pycocoevalcap" not in default  # 104 MB for a 9 KB scorer: lightning_attn.cider is ours
    assert "optuna-dashboard" not in default and "optuna-dashboard" in {
        requirement_name(r) for r in extras["dashboard"]
    }
    assert {"pycocoevalcap", "optuna-dashboard"} <= {requirement_name(r) for r in extras["dev"]}


def test_ruff_is_pinned_and_the_pin_is_what_is_installed():
    (pin,) = [r for r in project()["optional-dependencies"]["dev"] if requirement_name(r) == "ruff"]
    found = re.fullmatch(r"ruff==(\S+)", pin.replace(" ", ""))
    assert found, f"ruff must be pinned exactly (each release formats a little differently): {pin!r}"
    try:
        installed = version("ruff")
    except PackageNotFoundError:
        pytest.skip("ruff is not installed here")
    assert installed == found[1], (
        f"ruff {installed} is installed, the dev extra pins {found[1]}: pip install -e '.[dev]'"
    )


def test_ui_optuna_without_optuna_dashboard_says_how_to_install_it(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "optuna_dashboard", None)  # what `import optuna_dashboard` finds uninstalled
    assert main(["ui", "--optuna", "--storage", "sqlite:///never-opened.db"]) == 2
    err = capsys.readouterr().err
    assert err == "error: lightning-attn ui --optuna needs optuna-dashboard: pip install 'lightning-attn[dashboard]'\n"
    assert not Path("never-opened.db").exists()  # said before the storage is opened
