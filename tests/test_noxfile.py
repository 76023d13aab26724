"""The noxfile's Python: the one that runs nox where pyproject.toml declares it, else the newest declared one on
the PATH, else a session fails in one line with a non-zero exit (never a skip that exits 0)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RUNNING = "{}.{}".format(*sys.version_info[:2])


def project(folder: Path, versions: list[str]) -> Path:
    """The noxfile beside a pyproject.toml that declares ``versions``, and a bin folder for the PATH."""
    shutil.copy(ROOT / "noxfile.py", folder / "noxfile.py")
    classifiers = ", ".join(f'"Programming Language :: Python :: {v}"' for v in versions)
    (folder / "pyproject.toml").write_text(
        f'[project]\nname = "x"\nclassifiers = [{classifiers}]\ndependencies = []\n'
        '[project.optional-dependencies]\ndocs = []\ndev = ["ruff==0.17.6"]\n'
    )
    (folder / "bin").mkdir()
    return folder / "bin"


def shim(bin_dir: Path, version: str, works: bool) -> None:
    """``python{version}`` on the PATH: this interpreter, or one that fails as a pyenv shim of a version not
    activated does."""
    body = f'exec {sys.executable} "$@"' if works else f'echo "pyenv: python{version}: command not found" >&2; exit 127'
    path = bin_dir / f"python{version}"
    path.write_text(f"#!/bin/sh\n{body}\n")
    path.chmod(0o755)


def nox(folder: Path, bin_dir: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PATH": f"{bin_dir}:/usr/bin:/bin"}
    return subprocess.run(
        [sys.executable, "-m", "nox", "-f", str(folder / "noxfile.py"), *args],
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def pythons(folder: Path, bin_dir: Path) -> dict[str, str]:
    listed = nox(folder, bin_dir, "--list", "--json", "-s", "tests", "demo", "versions")
    assert listed.returncode == 0, listed.stderr
    return {s["session"]: s["python"] for s in json.loads(listed.stdout)}


def test_sessions_run_on_the_python_that_runs_nox_where_it_is_declared(tmp_path):
    bin_dir = project(tmp_path, ["3.99", RUNNING])
    found = pythons(tmp_path, bin_dir)
    assert found["tests"] == found["demo"] == sys.executable  # by its path: it need not be on the PATH
    assert [s for s in found if s.startswith("versions")] == ["versions-3.99", f"versions-{RUNNING}"]


def test_else_on_the_newest_declared_python_that_answers_on_the_path(tmp_path):
    bin_dir = project(tmp_path, ["3.97", "3.98", "3.99"])
    shim(bin_dir, "3.97", works=True)
    shim(bin_dir, "3.98", works=True)
    shim(bin_dir, "3.99", works=False)  # on the PATH, but it does not run
    assert pythons(tmp_path, bin_dir)["tests"] == "3.98"


def test_with_none_a_session_fails_in_one_line(tmp_path):
    bin_dir = project(tmp_path, ["3.98", "3.99"])
    shim(bin_dir, "3.99", works=False)
    done = nox(tmp_path, bin_dir, "-s", "demo")
    assert done.returncode != 0
    said = [line for line in (done.stdout + done.stderr).splitlines() if "lightning-attn needs Python" in line]
    assert len(said) == 1, done.stdout + done.stderr
    assert f"nox runs on {RUNNING} and none of python3.98, python3.99 is on the PATH" in said[0]
    assert "Traceback" not in done.stderr
