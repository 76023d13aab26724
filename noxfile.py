"""Developer sessions. ``python3 -m pip install 'nox[uv]' && python3 -m nox -s tests``.

Sessions run on the Python that runs nox where pyproject.toml declares it (else the newest declared one on the
PATH; with none, they fail in one line). Every session installs ``torch==2.13.0`` *before* the package: where a
machine keeps its CPU wheel among pip's local wheels that is the one taken, and the package's open ``torch``
range is then already satisfied (otherwise pip could pull a newer multi-GB CUDA build). Set
``LIGHTNING_ATTN_TORCH`` to another requirement (e.g. ``torch==2.13.0+cu128``) on a GPU machine.

* ``tests`` — the fast suite (unit-level; about 2 minutes on two cores), two test files at a time; ``-- -m e2e``
  runs the end-to-end suite (sweeps, DDP, servers, a browser, a wheel) in the same environment, ``-- -m slow``
  the full-default accuracy runs;
* ``versions`` — the fast suite on every Python pyproject.toml declares (``versions-3.12``: one of them);
* ``lint`` — ruff, check and format;
* ``lowest`` — the fast suite on the lowest dependency versions ``pyproject.toml`` allows (run it each working
  session; not in CI, which it would take past its 20 minutes);
* ``newest`` — the fast suite on the newest releases of every dependency (run it each working session; not in
  CI, whose result would change from day to day);
* ``demo`` — the README's main job; ``bench`` — the benchmarks;
* ``docs`` — the documentation site, ``mkdocs build --strict`` (CI runs it); ``docs-images`` — the README's
  picture of the report, from the demo's own output.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import nox

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10: tomli, which nox itself depends on there
    import tomli as tomllib

nox.options.sessions = ["lint", "tests"]
nox.options.reuse_venv = "yes"
# uv where nox has it (`pip install 'nox[uv]'`): it sets up an environment in seconds where pip takes a minute or
# more; plain virtualenv and pip otherwise. lowest and newest stay on pip, whose resolver options they use.
nox.options.default_venv_backend = "uv|virtualenv"
# a session whose Python is not on this machine fails, in one line and with exit 1, instead of being skipped
# with exit 0 as if it had passed
nox.options.error_on_missing_interpreters = True

PROJECT = tomllib.loads((Path(__file__).parent / "pyproject.toml").read_text())["project"]
# the Pythons this project is tested on: pyproject.toml's classifiers (its requires-python is their floor)
SUPPORTED = [c.rpartition(" :: ")[2] for c in PROJECT["classifiers"] if re.fullmatch(r".* :: Python :: 3\.\d+", c)]
RUNNING = "{}.{}".format(*sys.version_info[:2])


def _answers(version: str) -> bool:
    """Whether ``python{version}`` on the PATH runs (a pyenv shim of a version not activated does not)."""
    found = shutil.which(f"python{version}")
    return bool(found) and subprocess.run([found, "-c", ""], capture_output=True, check=False).returncode == 0


def _python() -> tuple[str, str]:
    """The Python the sessions run on: the one running nox where it is supported (by its path: it need not be on
    the PATH), else the newest supported one on the PATH; and, where there is none, why (else "")."""
    if RUNNING in SUPPORTED:
        return sys.executable, ""
    for version in reversed(SUPPORTED):
        if _answers(version):
            return version, ""
    names = ", ".join(f"python{v}" for v in SUPPORTED)
    return sys.executable, (
        f"lightning-attn needs Python {SUPPORTED[0]} to {SUPPORTED[-1]}: nox runs on {RUNNING} and none of {names} "
        "is on the PATH (install one, or run nox with one)"
    )


PYTHON, NO_PYTHON = _python()
TORCH = os.environ.get("LIGHTNING_ATTN_TORCH", "torch==2.13.0")


def install(session: nox.Session, extras: str = "dev", constraints: Path | None = None) -> None:
    """torch first (see above), then the package in editable mode with ``extras`` (none: ``""``)."""
    if NO_PYTHON:
        session.error(NO_PYTHON)
    uv = uv_settings(session)
    session.install(*uv, TORCH)
    session.install(*uv, *(["-c", str(constraints)] if constraints else []), "-e", f".[{extras}]" if extras else ".")


def uv_settings(session: nox.Session) -> list[str]:
    """What pip would have applied by itself, for uv (nox's `uv` backend, with `pip install 'nox[uv]'`): uv reads
    neither pip's configuration files nor its PIP_* variables, so the folders of local wheels (``find-links``: where
    a machine keeps torch's CPU build) and the constraint files pip is configured with are passed on; and the
    packages are compiled at install, as pip does (else every new process compiles what it imports, and where
    PYTHONDONTWRITEBYTECODE is set, every time). Nothing under pip (virtualenv backend)."""
    if session.venv_backend != "uv":
        return []
    found = subprocess.run([sys.executable, "-m", "pip", "config", "list"], capture_output=True, text=True, check=False)
    args = ["--compile-bytecode"]
    for line in found.stdout.splitlines():
        key, _, value = line.partition("=")
        option = {"find-links": "--find-links", "constraint": "--constraint"}.get(key.rpartition(".")[2])
        for item in value.strip("'\"").split() if option else []:
            if item not in args:
                args += [option, item]
    return args


@nox.session(python=PYTHON)
def tests(session: nox.Session) -> None:
    """The fast test suite (pass `-- -m e2e` for the end-to-end runs, `-- -m slow` for the long ones).

    Two test processes (pytest-xdist), a test file at a time each: the fast suite's tests, each on one thread
    (tests/conftest.py), take half the time they take one after the other; the end-to-end tests, which spend much
    of theirs starting processes and waiting on servers, about two thirds. `-n` given: as given.
    """
    suite(session)


@nox.session(python=SUPPORTED)
def versions(session: nox.Session) -> None:
    """The fast suite on every Python pyproject.toml declares (its classifiers), each in its own environment:
    `nox -s versions` all of them (one that is not on the PATH fails, in one line), `nox -s versions-3.12` one.
    With pyenv, activate them first (`pyenv shell 3.10 3.11 3.12 3.13`): a shim of a version not active fails.
    Off Python 3.11 the torch that LIGHTNING_ATTN_TORCH names comes from PyPI (a CUDA build, several GB)."""
    suite(session)


def suite(session: nox.Session) -> None:
    """pytest with the session's arguments (else ``-q``), on two processes unless they say how many."""
    install(session)
    args = session.posargs or ["-q"]
    if not _parallel_chosen(args):
        args = ["-n", str(min(2, os.cpu_count() or 1)), "--dist", "loadfile", *args]
    session.run("pytest", *args)


def _parallel_chosen(args: list[str]) -> bool:
    """Whether pytest's arguments already say how many processes: ``-n N`` / ``--numprocesses``, or xdist turned
    off (``-p no:xdist``); any other plugin option (``-p no:cacheprovider``) leaves it to this session."""
    pairs = zip(args, [*args[1:], ""])
    return any(a.startswith(("-n", "--numprocesses")) for a in args) or any(
        a in ("-pno:xdist", "-p=no:xdist") or (a == "-p" and b == "no:xdist") for a, b in pairs
    )


def floors() -> list[str]:
    """`name==X` for every `name>=X` that pyproject.toml declares: the dependencies and every extra (torch and
    the test tools too)."""
    requirements = PROJECT["dependencies"] + [r for group in PROJECT["optional-dependencies"].values() for r in group]
    pins = set()
    for requirement in requirements:
        found = re.match(r"^([A-Za-z0-9_.\-]+)(\[[^\]]*\])?\s*>=\s*([^,;\s]+)", requirement)
        if found:
            pins.add(f"{found[1].lower()}=={found[3]}")
    return sorted(pins)


@nox.session(python=PYTHON, reuse_venv=False, venv_backend="virtualenv")
def lowest(session: nox.Session) -> None:
    """The fast suite on every declared floor, exactly: each direct dependency's (and each extra's) `name>=X`
    pinned to `name==X`, torch's included, in a new environment. Indirect dependencies float to their newest
    compatible releases (uv's `lowest-direct`, with pip's own resolver).

    torch's floor is 2.13: the only CPU build these machines can install, so the only one testable here.
    LIGHTNING_ATTN_TORCH may name that version's GPU build (`torch==2.13.0+cu128`); another version conflicts.
    """
    pins = floors()
    # beside the environment, not in session.create_tmp(): that points TMPDIR into the repository, and tests
    # that need a folder outside any git work tree would get one inside it
    constraints = Path(session.virtualenv.location) / "lowest.txt"
    constraints.write_text("\n".join(pins) + "\n")
    session.log("lowest: " + ", ".join(pins))
    install(session, constraints=constraints)
    session.run("python", "-m", "pip", "list", "--format=freeze", silent=False)
    session.run("pytest", *(session.posargs or ["-q"]))


@nox.session(python=PYTHON, reuse_venv=False, venv_backend="virtualenv")
def newest(session: nox.Session) -> None:
    """The fast suite on the newest releases of every dependency, direct and indirect (`pip install --upgrade
    --upgrade-strategy eager`), in a new environment: what the next releases break shows up here first.

    torch stays at LIGHTNING_ATTN_TORCH (2.13.0, the newest CPU build these machines can install; PyPI's newer
    torch is a multi-GB CUDA build): on a GPU machine, name the newest build there.
    """
    constraints = Path(session.virtualenv.location) / "torch.txt"  # not session.create_tmp(): see lowest
    constraints.write_text(TORCH + "\n")
    session.install(TORCH)
    session.install("--upgrade", "--upgrade-strategy", "eager", "-c", str(constraints), "-e", ".[dev]")
    session.run("python", "-m", "pip", "list", "--format=freeze", silent=False)
    session.run("pytest", *(session.posargs or ["-q"]))


@nox.session(python=PYTHON)
def demo(session: nox.Session) -> None:
    """The main job on built-in data: soft vs hard attention vs the uniform control (sweeps/demo.yaml), each
    trained as configured once per seed on two CPU workers, every run tracked in MLflow; then the trade-off
    report, which ends in a decision. Run again, it continues (or re-shows) the same comparison and rebuilds
    the report.

    Extra arguments go to `lightning-attn sweep`: `nox -s demo -- 'seeds=[0,1,2,3,4]'`.
    """
    install(session, extras="")  # the toolkit alone: the demo needs none of the test tools
    session.run("lightning-attn", "sweep", "sweeps/demo.yaml", "--devices", "cpu:2", "--resume", *session.posargs)
    session.run("lightning-attn", "report", "--experiment", "demo", "--out", "outputs/report")
    report = Path("outputs/report/report.html").resolve()
    session.log(f"The report: {report}  (Markdown, CSV and JSON beside it; also logged to MLflow)")
    session.log("The runs behind it (a parent run per mechanism, a child run per seed), in the MLflow UI:")
    session.log(f"  {Path(session.bin) / 'lightning-attn'} ui    # then http://127.0.0.1:5000")


@nox.session(python=PYTHON)
def bench(session: nox.Session) -> None:
    """The benchmarks (not tests): each prints its figures and ends with one `RATIO` line.

    `nox -s bench -- overhead` runs one of them (overhead, attention_ops, sweep_scaling, memory,
    multi30k_throughput — it reads $MULTI30K or ../shared/data/multi30k —, sweep_storage_scale — it starts
    a PostgreSQL of its own —, workers_under_load and speed_pass — they start busy loops of their own —,
    sequential_seeds, incremental_decoding). Give
    the machine to them: other work beside them skews timings. Result tables are not benchmarks: they come from
    `lightning-attn report` (docs/results.md).
    """
    install(session)
    names = session.posargs or [
        "overhead",
        "attention_ops",
        "sweep_scaling",
        "memory",
        "multi30k_throughput",
        "sweep_storage_scale",
        "workers_under_load",
        "sequential_seeds",
        "speed_pass",
        "incremental_decoding",
    ]
    for name in names:
        session.run("python", f"benchmarks/{name}.py")


@nox.session(python=PYTHON)
def docs(session: nox.Session) -> None:
    """The documentation site (mkdocs.yml, docs/) built into site/ with `mkdocs build --strict`: a broken link or
    anchor, a page missing from the nav or a docstring the API pages cannot read fails it. `-- serve` previews it.

    Only the docs extra is installed: the API pages read the source tree, so neither the package nor torch is.
    """
    extra = PROJECT["optional-dependencies"]["docs"]
    session.install(*extra)
    session.run("mkdocs", *(session.posargs or ["build", "--strict"]), env={"NO_MKDOCS_2_WARNING": "1"})


# 256 colours, the octree keeping the plots' few colours apart: a third of the full-colour file
REPORT_PNG = """
import sys
from PIL import Image
shot, out = sys.argv[1:]
image = Image.open(shot).convert("RGB")
image.quantize(colors=256, method=Image.Quantize.FASTOCTREE, dither=Image.Dither.NONE).save(out, optimize=True)
"""


@nox.session(name="docs-images", python=PYTHON)
def docs_images(session: nox.Session) -> None:
    """The README's picture, made from the toolkit's own output: docs/images/report.png is the top of the demo's
    report (outputs/report/report.html — run `nox -s demo` first) in headless chromium, at a browser window's
    width. Needs chromium (Debian: `apt-get install chromium`).
    """
    report = Path("outputs/report/report.html")
    if not report.is_file():
        session.error(f"{report} is missing: run `python3 -m nox -s demo` first")
    browser = next((b for b in ("chromium", "chromium-browser", "google-chrome") if shutil.which(b)), None)
    if browser is None:
        session.error("docs-images needs chromium (Debian: apt-get install chromium)")
    session.install("pillow>=10")
    tmp = Path(session.create_tmp())
    shot, profile = tmp / "report-full.png", tmp / "chromium-profile"
    shot.unlink(missing_ok=True)
    shutil.rmtree(profile, ignore_errors=True)  # a fresh profile every time
    session.run(
        browser,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        f"--user-data-dir={profile}",
        "--hide-scrollbars",
        "--window-size=1280,2140",
        "--virtual-time-budget=10000",  # plotly draws
        f"--screenshot={shot}",
        report.resolve().as_uri(),
        external=True,
        silent=True,
    )
    if not shot.is_file():
        session.error(f"{browser} wrote no screenshot of {report}")
    out = Path("docs/images/report.png")
    out.parent.mkdir(parents=True, exist_ok=True)
    session.run("python", "-c", REPORT_PNG, str(shot), str(out))
    session.log(f"{out}: {out.stat().st_size // 1024} KiB, from {report}")


@nox.session(python=PYTHON)
def lint(session: nox.Session) -> None:
    """ruff, at the version the dev extra pins (each release formats a little differently)."""
    dev = PROJECT["optional-dependencies"]["dev"]
    session.install(next(r for r in dev if re.match(r"ruff\s*==", r)))
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")
