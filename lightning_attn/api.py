"""The toolkit from Python — a notebook, a script — with what the commands do (``from lightning_attn.api import
train, compare, sweep, report``; ``lightning_attn.train``, ``.sweep`` and ``.report`` are the modules behind them).
Each function takes what its command takes, as keywords, and returns typed results instead of printing them; bad
input raises :class:`~lightning_attn.config.ConfigError` (its one line).

Example (built-in data, small enough for a first look; ``docs/python.md`` runs it):

    from lightning_attn.api import report, train

    for mechanism in ("soft", "uniform"):
        train(f"attention={mechanism}", "seeds=0-2", "logger.experiment_name=notebook", "trainer.max_epochs=4")
    found = report("notebook")
    found.decisions["translation"].text   # the decision, in words
    found.frames()["table"]               # the table, as a pandas DataFrame
    found                                 # in Jupyter: the decision and the tables
"""

from __future__ import annotations

import dataclasses
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .report.document import Report

if TYPE_CHECKING:
    from .report.decision import Objective
    from .train import SeedsResult, TrainResult

__all__ = ["ReportView", "compare", "report", "sweep", "train"]


class ReportView(Report):
    """A :class:`~lightning_attn.report.document.Report` for a notebook: shown in Jupyter (the decision, then per
    task its table, verdict, speed pass and significance tests), its tables as pandas DataFrames."""

    def frames(self) -> dict[str, Any]:
        """``table`` (one row per task and mechanism, as the report's table and CSV), ``per_seed`` (one row per seed
        run), ``significance`` (one row per pair: its difference, interval, raw and family-adjusted p, outcome) and
        ``decisions`` (one row per task)."""
        import pandas as pd

        from .report.render import per_seed_records

        return {
            "table": pd.DataFrame([r.as_dict() for r in self.rows]),
            "per_seed": pd.DataFrame(per_seed_records(self.rows)),
            "significance": pd.json_normalize([t.as_dict() for t in self.tests]),
            "decisions": pd.DataFrame([d.as_dict() for d in self.decisions.values()]),
        }

    def _repr_html_(self) -> str:
        from .report.render import html_fragment

        return html_fragment(self)


def train(*overrides: str, model: bool = True) -> TrainResult | SeedsResult:
    """``lightning-attn train OVERRIDES…``: one run (or, with ``seeds=0-2``, one per seed under a parent run),
    trained, tested and recorded in MLflow (``MLFLOW_TRACKING_URI``, else ``sqlite:///mlflow.db``). Ctrl+C stops
    it at the next batch, its run marked KILLED. ``model``: a single translation run is also logged as an MLflow
    model (:mod:`lightning_attn.served`), as the command does."""
    from .config import compose
    from .processes import stops_at_safe_points
    from .served import log_trained
    from .train import train as train_one
    from .train import train_seeds

    cfg = compose(list(overrides))
    with stops_at_safe_points():
        if cfg.seeds:
            return train_seeds(cfg)
        result = train_one(cfg)
    if model:
        log_trained(cfg.task.name, result, cfg.data.kind)
    return result


def compare(
    attention: Sequence[str],
    *,
    task: str | None = None,
    seeds: Sequence[int] = (0, 1, 2),
    overrides: Sequence[str] = (),
    name: str | None = None,
    devices: str | None = None,
    until_decided: bool = False,
    max_seeds: int | None = None,
    speed_pass: bool = True,
    resume: bool = False,
    out: Path | None = None,
) -> str:
    """``lightning-attn compare attention=A,B seeds=…``: each mechanism trained as configured once per seed, on
    ``devices`` (``cpu:2``, ``0,1``; default: one worker), then the speed pass. Returns the MLflow experiment
    the runs are in (what :func:`report` reads).

    Raises:
        RuntimeError: the comparison did not finish (stopped, or every run failed); ``resume=True`` continues it.
    """
    from .config import default_choice
    from .sweep import run_sweep
    from .sweep.spec import comparison, experiment_name

    spec = comparison(
        task or default_choice("task"),
        list(attention),
        list(seeds),
        list(overrides),
        name,
        until_decided=until_decided,
        max_seeds=max_seeds,
        speed_pass=speed_pass,
    )
    _ran(run_sweep(spec, folder=out, devices=devices, resume=resume), spec.name)
    return experiment_name(spec)


def sweep(file: str | Path, *overrides: str, devices: str | None = None, resume: bool = False) -> str:
    """``lightning-attn sweep FILE``: one Optuna study per mechanism, the same budget each (``overrides`` change
    the file's settings, as on the command line). Returns the MLflow experiment the runs are in.

    Raises:
        RuntimeError: the sweep did not finish; ``resume=True`` continues it.
    """
    from .sweep import load, run_sweep
    from .sweep.spec import experiment_name

    spec = load(str(file), list(overrides))
    _ran(run_sweep(spec, devices=devices, resume=resume), spec.name)
    return experiment_name(spec)


def report(
    *experiments: str,
    tracking_uri: str | None = None,
    out: Path | None = None,
    constraints: Sequence[str] = (),
    objective: Objective | None = None,
    margins: dict[str, float] | None = None,
    reference: str | None = None,
    log: bool = False,
) -> ReportView:
    """``lightning-attn report --experiment …``: the trade-off report over the experiments' runs, as a
    :class:`ReportView` — its ``decisions``, ``verdicts`` and tests as data, :meth:`ReportView.frames` as pandas
    DataFrames, and shown in Jupyter. With ``out``,
    its files (HTML, Markdown, CSV, JSON) are written there too; with ``log``, logged to MLflow."""
    from .report import FORMATS, Constraint, build_report
    from .tracking import check_tracking_store, resolve_tracking_uri

    uri = resolve_tracking_uri(tracking_uri)
    check_tracking_store(uri)
    asked = [Constraint.parse(c) for c in constraints]
    with tempfile.TemporaryDirectory() as tmp:
        written = build_report(
            uri,
            Path(out) if out is not None else Path(tmp),
            list(experiments) or None,
            formats=FORMATS if out is not None else (),
            constraints=asked,
            objective=objective,
            margins=margins,
            reference=reference,
            log=log and out is not None,
        )
    found = written.report
    return ReportView(**{f.name: getattr(found, f.name) for f in dataclasses.fields(found)})


def _ran(code: int, name: str) -> None:
    if code != 0:
        raise RuntimeError(f"{name} did not finish (exit code {code}); its logs say why, and resume=True continues it")
