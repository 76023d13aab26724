"""Developer sessions. ``python3 -m pip install nox && python3 -m nox -s tests``.

Every session installs ``torch==2.13.0`` *before* the package: on a CPU-only machine that pin
resolves to the CPU wheel, and the package's open ``torch`` range is then already satisfied
(otherwise pip could pull a multi-GB CUDA build). Set ``LIGHTNING_ATTN_TORCH`` to another
requirement (e.g. ``torch==2.13.0+cu128``) on a GPU machine.

* ``tests`` — the fast suite (unit-level; about 2 minutes); ``-- -m e2e`` runs the end-to-end suite
  (sweeps, DDP, servers, a browser, a wheel) in the same environment, ``-- -m slow`` the full-default
  accuracy runs;
* ``lint`` — ruff, check and format;
* ``lowest`` — the fast suite on the lowest dependency versions ``pyproject.toml`` allows;
* ``demo`` — the README's main job; ``bench`` — the benchmarks.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import nox
import tomllib

nox.options.sessions = ["lint", "tests"]
nox.options.reuse_venv = "yes"

PYTHON = "3.11"
TORCH = os.environ.get("LIGHTNING_ATTN_TORCH", "torch==2.13.0")


def install(session: nox.Session, extras: str = "dev", constraints: Path | None = None) -> None:
    session.install(TORCH)
    session.install(*(["-c", str(constraints)] if constraints else []), "-e", f".[{extras}]")


@nox.session(python=PYTHON)
def tests(session: nox.Session) -> None:
    """The fast test suite (pass `-- -m e2e` for the end-to-end runs, `-- -m slow` for the long ones)."""
    install(session)
    session.run("pytest", *(session.posargs or ["-q"]))


@nox.session(python=PYTHON)
def lowest(session: nox.Session) -> None:
    """The fast suite on the lowest versions pyproject.toml allows: every dependency's `name>=X` pinned to
    `name==X` (the test tools themselves float).

    torch stays at the machine's build (LIGHTNING_ATTN_TORCH): a CPU-only machine has no other.
    """
    project = tomllib.loads(Path("pyproject.toml").read_text())["project"]
    requirements = project["dependencies"] + project["optional-dependencies"]["postgres"]
    pins = []
    for requirement in requirements:
        found = re.match(r"^([A-Za-z0-9_.\-]+)(\[[^\]]*\])?\s*>=\s*([^,;\s]+)", requirement)
        if found and found[1] != "torch":
            pins.append(f"{found[1]}=={found[3]}")
    constraints = Path(session.create_tmp()) / "lowest.txt"
    constraints.write_text("\n".join(pins) + "\n")
    session.log("lowest: " + ", ".join(pins))
    install(session, constraints=constraints)
    session.run("pytest", *(session.posargs or ["-q"]))


@nox.session(python=PYTHON)
def demo(session: nox.Session) -> None:
    """The main job on built-in data: soft vs hard attention vs the uniform control (sweeps/demo.yaml), each
    trained as configured once per seed on two CPU workers, every run tracked in MLflow; then the trade-off
    report, which ends in a decision. Run again, it continues (or re-shows) the same comparison and rebuilds
    the report.

    Extra arguments go to `lightning-attn sweep`: `nox -s demo -- seeds=[0,1,2,3,4]`.
    """
    install(session)
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
    a PostgreSQL of its own). Give the machine to them: other work beside them skews timings. Result tables are
    not benchmarks: they come from `lightning-attn report` (docs/results.md).
    """
    install(session)
    names = session.posargs or ["overhead", "attention_ops", "sweep_scaling", "memory", "multi30k_throughput",
                                "sweep_storage_scale"]  # fmt: skip
    for name in names:
        session.run("python", f"benchmarks/{name}.py")


@nox.session(python=PYTHON)
def lint(session: nox.Session) -> None:
    session.install("ruff")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")
