"""Trade-off reports: runs read back from MLflow (and Optuna studies) → tables, diagnostics, significance,
plots, verdicts → HTML / Markdown / CSV / JSON.

:mod:`.collect` reads; :mod:`.aggregate` (rows), :mod:`.comparisons` with :mod:`.significance` (tests),
:mod:`.diagnostics`, :mod:`.verdict`, :mod:`.decision` and :mod:`.plots` compute, in the words of
:mod:`.wording`; :mod:`.render` writes. :func:`build_report` is the ``lightning-attn report`` command.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from ..tracking import mask_secrets
from . import aggregate, collect, comparisons, decision, diagnostics, plots, render, significance, speed, verdict
from .decision import Constraint, Objective
from .document import Report

FORMATS = ("html", "md", "csv", "json")


@dataclass
class Written:
    paths: dict[str, Path]  # format -> file
    results: int  # task x mechanism rows
    failures: int  # failed runs listed
    decisions: list[str] = field(default_factory=list)  # the decision of each task, as the report opens with it
    report: Report | None = None  # what was written, as data


def build_report(
    tracking_uri: str | list[str],
    out: Path,
    experiments: list[str] | None = None,
    *,
    studies: list[str] | None = None,
    formats: tuple[str, ...] = FORMATS,
    bootstrap_samples: int = significance.BOOTSTRAP_SAMPLES,
    reference: str | None = None,
    min_seeds: int = aggregate.MIN_SEEDS,
    constraints: list[Constraint] | None = None,
    objective: Objective | None = None,
    log: bool = True,
    margins: dict[str, float] | None = None,
) -> Written:
    """Write the report into ``out``: every format asked for, and how many comparable results and
    failed runs it holds (a report over failed runs only lists the failures and their reasons). It opens
    with the decision (:mod:`.decision`) under ``constraints`` and ``objective``; with ``log``, the files
    are also logged to a ``report`` run in each experiment it covers. ``margins``: of practical equivalence, by
    metric (``""``: every task's headline metric); default: each task's own."""
    unknown = [f for f in formats if f not in FORMATS]
    if unknown:
        raise ValueError(f"unknown format {unknown[0]!r}; choose from: {', '.join(FORMATS)}")
    collected = collect.collect(tracking_uri, experiments, studies)
    rows = aggregate.summarise(collected, min_seeds)
    failed = aggregate.failures(collected)
    if not rows and not failed:
        raise LookupError(
            f"no finished runs with test metrics in {', '.join(map(mask_secrets, collected.stores))} "
            f"(experiments: {', '.join(collected.experiments) or 'none'})"
        )
    curves = _validation_curves(rows)
    asked = Asked(bootstrap_samples, reference, min_seeds, constraints or [], objective or Objective(), margins)
    report = _analyse(collected, rows, failed, curves, asked)
    out.mkdir(parents=True, exist_ok=True)
    written: dict[str, Path] = {}
    if "csv" in formats:
        written["csv"] = render.write_csv(out, rows)
    if "json" in formats:
        written["json"] = render.write_json(out, report)
    if "html" in formats or "md" in formats:
        written |= _write_pages(out, report, collected, curves, formats)
    if log and written:
        collect.log_report(collected, written)
    decided = [d.text.replace("**", "") for d in report.decisions.values()]
    return Written(written, len(rows), len(failed), decided, report)


@dataclass
class Asked:
    """What a report is asked to judge by (:func:`build_report`'s options)."""

    samples: int  # bootstrap replicates
    reference: str | None
    min_seeds: int
    constraints: list[Constraint]
    objective: Objective
    margins: dict[str, float] | None


def _analyse(
    collected: collect.Collected,
    rows: list[aggregate.Row],
    failed: list[aggregate.Failure],
    curves: dict[str, list[float]],
    asked: Asked,
) -> Report:
    """The tests (the family), diagnoses, verdicts and decisions over ``rows``: the report's content."""
    compared = [r for row in rows for r in row.compared]
    margins = comparisons.margins(rows, asked.margins)
    tests = comparisons.pair_tests(rows, collect.predictions(compared), asked.samples, margins=margins)
    diagnoses = diagnostics.diagnose(rows, tests, curves, asked.min_seeds)
    timed = speed.passes(collected.speed_passes)
    verdicts = verdict.verdicts(
        rows, tests, diagnoses, reference=asked.reference, min_seeds=asked.min_seeds, speed=timed
    )
    decisions = decision.decide(
        rows, tests, diagnoses, constraints=asked.constraints, objective=asked.objective, speed=timed
    )
    return Report(
        rows,
        tests,
        diagnoses,
        verdicts,
        decisions=decisions,
        warnings=aggregate.pooling_notes(collected) + diagnostics.budget_warnings(rows),
        failures=failed,
        constraints=[str(c) for c in asked.constraints],
        min_seeds=asked.min_seeds,
        margins=margins,
        importance_evaluator=collect.IMPORTANCE_EVALUATOR,
        speed=timed,
    )


def _validation_curves(rows: list[aggregate.Row]) -> dict[str, list[float]]:
    """Each compared run's validation metric, epoch by epoch (run id -> values)."""
    curves: dict[str, list[float]] = {}
    for group in aggregate.by_task(rows).values():
        key = group[0].compared[0].validation_metric
        if key:
            histories = collect.metric_histories([r for row in group for r in row.compared], key)
            curves |= {run_id: [v for _, v in h] for run_id, h in histories.items()}
    return curves


def _write_pages(
    out: Path, report: Report, collected: collect.Collected, curves: dict[str, list[float]], formats: tuple[str, ...]
) -> dict[str, Path]:
    """The pages (HTML, Markdown) with what only they show: plots, the best runs' attention pictures, the source."""
    for task, group in aggregate.by_task(report.rows).items():
        report.plots += plots.pareto_plots(task, group, collected)
        key = group[0].compared[0].validation_metric or "validation metric"
        report.plots.append(plots.learning_curves(task, group, curves, key))
    report.plots += plots.importance_plots(collected, collect.importances(collected))
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    stores = ", ".join(map(mask_secrets, collected.stores))
    report.source = (
        f"{len(collected.runs)} runs from {stores}, experiments {', '.join(collected.experiments)}; generated {stamp}"
    )
    by_id = {r.run_id: r for r in collected.runs}
    written = {}
    with tempfile.TemporaryDirectory() as tmp:
        for row in report.rows:
            pictures = collect.attention_pictures(by_id[row.best_run], Path(tmp) / row.best_run)
            if pictures:
                report.gallery.setdefault(row.task, {})[row.mechanism] = pictures
        if "html" in formats:
            written["html"] = render.write_html(out, report)
        if "md" in formats:
            written["md"] = render.write_markdown(out, report)
    return written
