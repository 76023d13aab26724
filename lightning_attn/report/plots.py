"""Plot data: what each of the report's plots shows, as plain :class:`Plot` records — points, lines and
bands with their names — that :mod:`.render` draws with plotly (HTML) and matplotlib (PNG). Text in them is
plain; escaping it for HTML is the renderer's.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass

from . import wording
from .aggregate import SPEED, Row
from .collect import IMPORTANCE_EVALUATOR, Collected


@dataclass
class Series:
    """One trace of a plot."""

    name: str
    x: list[float]
    y: list[float]
    mode: str = "markers"  # markers | lines | dashed | band (y = mean, low/high the band)
    low: list[float] | None = None
    high: list[float] | None = None
    labels: list[str] | None = None  # per point (hover text): plain, the renderer escapes it


@dataclass
class Plot:
    """One plot: its title, axes, traces and the note shown under it."""

    title: str
    x_label: str
    y_label: str
    series: list[Series]
    kind: str = "scatter"  # scatter | bar
    note: str = ""
    task: str = ""


def frontier(points: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """The Pareto frontier of ``(cost, accuracy)`` points: those not beaten by another that is both lower on x
    and higher on y, by increasing x."""
    best, front = -math.inf, []
    for x, y in sorted(points, key=lambda p: (p[0], -p[1])):
        if y > best:
            front.append((x, y))
            best = y
    return front


def pareto_plots(task: str, rows: list[Row], collected: Collected) -> list[Plot]:
    """For one ``task`` (its ``rows``): accuracy against inference latency, every finished run of each
    mechanism with its Pareto frontier; and, where rows have seed runs, mean accuracy against the seed spread."""
    metric = rows[0].metric
    latency = SPEED["infer_ms_p50_b1"]
    series = []
    for row in rows:
        runs = [
            r
            for r in collected.runs
            if r.task == task
            and r.mechanism == row.mechanism
            and r.status == "FINISHED"
            and r.accuracy is not None
            and latency in r.metrics
        ]
        points = [(r.metrics[latency], r.accuracy) for r in runs]
        if points:
            series.append(Series(row.mechanism, *map(list, zip(*points)), labels=[r.name for r in runs]))
            front = frontier(points)
            series.append(Series(f"{row.mechanism} frontier", *map(list, zip(*front)), mode="lines"))
    x_label = "greedy latency, b1 (ms, p50, measured in training)"
    plots = [
        Plot(f"{task}: accuracy vs inference latency", x_label, metric, series, note=wording.PARETO_NOTE, task=task)
    ]
    seeded = [r for r in rows if r.seed_std is not None]
    if seeded:
        points = [(r.seed_std, r.mean) for r in seeded]
        series = [Series(f"{r.mechanism} (n = {r.seeds})", [r.seed_std], [r.mean]) for r in seeded]
        front = frontier(points)
        series.append(Series("frontier", *map(list, zip(*front)), mode="lines"))
        plots.append(
            Plot(
                f"{task}: accuracy vs seed spread",
                f"std of {metric} over seeds",
                f"mean {metric}",
                series,
                note=wording.SEED_SPREAD_NOTE,
                task=task,
            )
        )
    return plots


def learning_curves(task: str, rows: list[Row], curves: dict[str, list[float]], key: str) -> Plot:
    """``key`` (the validation metric) per epoch for ``task``: mean and min–max band over each row's compared
    runs (``curves``: run id -> values); runs that stopped while still improving are drawn on their own
    (dashed): the evidence for a *not converged* flag."""
    series = []
    for row in rows:
        histories = [curves[r.run_id] for r in row.compared if curves.get(r.run_id)]
        if not histories:
            continue
        epochs = range(max(len(h) for h in histories))
        at = [[h[e] for h in histories if e < len(h)] for e in epochs]
        x = [e + 1 for e in epochs]
        series.append(
            Series(
                f"{row.mechanism} ({len(histories)} run(s))",
                x,
                [statistics.fmean(v) for v in at],
                "band",
                [min(v) for v in at],
                [max(v) for v in at],
            )
        )
        for run in row.compared:
            if run.converged is False and curves.get(run.run_id):
                values = curves[run.run_id]
                series.append(Series(f"{run.name}: still improving", list(range(1, len(values) + 1)), values, "dashed"))
    return Plot(f"{task}: learning curves", "epoch", key, series, note=wording.CURVES_NOTE, task=task)


def importance_plots(collected: Collected, values: dict[str, dict[str, float]]) -> list[Plot]:
    """One bar chart per study with importances (``values``: study -> hyperparameter -> importance, as
    :func:`.collect.importances` gives them), by study name."""
    plots = []
    for study_name, found in sorted(values.items()):
        run = next(r for r in collected.runs if r.study == study_name)
        names = list(found)
        plots.append(
            Plot(
                f"{run.task} / {run.mechanism}: hyperparameter importance ({study_name})",
                "importance",
                "",
                [Series(run.mechanism, [found[n] for n in names], names)],
                kind="bar",
                note=wording.importance_note(IMPORTANCE_EVALUATOR),
                task=run.task,
            )
        )
    return plots
