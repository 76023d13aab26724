"""From collected runs to the numbers a trade-off report shows: one row per task × mechanism, paired
significance tests between mechanisms, and a plain-language verdict per task."""

from __future__ import annotations

import html
import itertools
import math
import statistics
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ..tracking.seeds import seed_stats
from .collect import HEADLINE, Collected, RunRecord, read_artifact

SPEED = {
    "train_samples_per_s": "speed/train_samples_per_s",
    "infer_ms_p50_b1": "speed/infer_latency_ms_p50_b1",
    "peak_rss_mb": "speed/peak_rss_mb",
    "params": "speed/params",
}


@dataclass
class Row:
    """One task × mechanism. Accuracy is the task's test metric; ``seed_*`` over the seed runs (or
    the best run alone when there are none)."""

    task: str
    mechanism: str
    metric: str
    best: float
    best_run: str
    seeds: int
    mean: float
    ci95: float | None
    seed_std: float | None
    runs: int  # finished result runs of any kind
    trials_complete: int
    trials_pruned: int
    trials_failed: int
    failed_rate: float  # failed / (all trials or runs that ended)
    grad_norm_var: float | None
    attention_entropy: float | None
    train_samples_per_s: float | None
    infer_ms_p50_b1: float | None
    infer_ms_p50_bB: float | None
    peak_rss_mb: float | None
    params: float | None
    seed_run_ids: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        data = asdict(self)
        data.pop("seed_run_ids")
        return data


@dataclass
class Comparison:
    task: str
    a: str  # mechanism names
    b: str
    metric: str
    a_score: float
    b_score: float
    p_value: float | None  # None: not testable (no predictions, different test sets)
    note: str = ""

    @property
    def significant(self) -> bool | None:
        return None if self.p_value is None else self.p_value < 0.05


def _mean(values: list[float]) -> float | None:
    values = [v for v in values if v is not None and math.isfinite(v)]
    return statistics.fmean(values) if values else None


def summarise(collected: Collected) -> list[Row]:
    rows = []
    groups: dict[tuple[str, str], list[RunRecord]] = {}
    for run in collected.runs:
        groups.setdefault((run.task, run.mechanism), []).append(run)
    for (task, mechanism), runs in sorted(groups.items()):
        metric = HEADLINE.get(task, (None,))[0]
        results = [r for r in runs if r.status == "FINISHED" and r.accuracy is not None]
        if metric is None or not results:
            continue
        best = max(results, key=lambda r: r.accuracy)
        seed_runs = [r for r in results if r.kind == "seed"] or [best]
        acc = seed_stats([r.accuracy for r in seed_runs])
        trials = [r for r in runs if r.kind == "trial"]
        # runs that ended on their own: pruned and interrupted ones (KILLED) are neither success nor failure
        ended = [r for r in runs if r.status in ("FINISHED", "FAILED")]
        failed = [r for r in ended if r.status == "FAILED"]
        batch_latency = [v for r in seed_runs for k, v in r.metrics.items()
                         if k.startswith("speed/infer_latency_ms_p50_b") and not k.endswith("_b1")]  # fmt: skip
        rows.append(Row(
            task, mechanism, metric, best.accuracy, best.run_id, acc.n, acc.mean,
            None if math.isnan(acc.ci95) else acc.ci95, acc.std if acc.n > 1 else None, len(results),
            sum(r.optuna_state == "COMPLETE" for r in trials), sum(r.optuna_state == "PRUNED" for r in trials),
            sum(r.optuna_state == "FAIL" and r.status == "FAILED" for r in trials),  # not the interrupted
            len(failed) / len(ended) if ended else 0.0,
            _mean([r.metrics.get("stability/grad_norm_std", math.nan) ** 2 for r in seed_runs]),
            _mean([r.metrics.get("stability/attention_entropy") for r in seed_runs]),
            *(_mean([r.metrics.get(key) for r in seed_runs]) for key in
              (SPEED["train_samples_per_s"], SPEED["infer_ms_p50_b1"])),
            _mean(batch_latency),
            *(_mean([r.metrics.get(SPEED[k]) for r in seed_runs]) for k in ("peak_rss_mb", "params")),
            [r.run_id for r in seed_runs],
        ))  # fmt: skip
    return rows


def budget_warnings(rows: list[Row]) -> list[str]:
    """Mechanisms of one task tuned with different budgets are not compared like with like: say so."""
    warnings = []
    for task, group in itertools.groupby(sorted(rows, key=lambda r: r.task), key=lambda r: r.task):
        budgets = {r.mechanism: r.trials_complete + r.trials_pruned + r.trials_failed for r in group}
        if len(set(budgets.values())) > 1:
            listing = ", ".join(f"{m} {n}" for m, n in budgets.items())
            warnings.append(f"{task}: tuning budgets differ between mechanisms (trials: {listing})")
    return warnings


def significance(rows: list[Row], tracking_uri: str, n_samples: int = 1000) -> list[Comparison]:
    """Every pair of mechanisms of a task, best run against best run, with sacrebleu's paired bootstrap
    resampling on the shared test set (the runs' ``predictions/test.{hyp,ref}.txt``)."""
    from sacrebleu.metrics import BLEU
    from sacrebleu.significance import PairedTest

    out = []
    with tempfile.TemporaryDirectory() as tmp:
        preds = {}
        for row in rows:
            folder = Path(tmp) / row.best_run
            hyp = read_artifact(tracking_uri, row.best_run, "predictions/test.hyp.txt", folder)
            ref = read_artifact(tracking_uri, row.best_run, "predictions/test.ref.txt", folder)
            if hyp and ref:
                preds[(row.task, row.mechanism)] = (_lines(hyp), [line.split("\t") for line in _lines(ref)])
        for task, group in itertools.groupby(sorted(rows, key=lambda r: r.task), key=lambda r: r.task):
            group = sorted(group, key=lambda r: -r.best)
            for a, b in itertools.combinations(group, 2):
                comparison = Comparison(task, a.mechanism, b.mechanism, a.metric, a.best, b.best, None)
                pa, pb = preds.get((task, a.mechanism)), preds.get((task, b.mechanism))
                if pa is None or pb is None:
                    comparison.note = "no test predictions logged"
                elif pa[1] != pb[1]:
                    comparison.note = "different test sets"
                else:
                    width = max(len(refs) for refs in pa[1])
                    references = [[refs[i] if i < len(refs) else refs[0] for refs in pa[1]] for i in range(width)]
                    test = PairedTest([(a.mechanism, pa[0]), (b.mechanism, pb[0])], {"BLEU": BLEU()}, references,
                                      test_type="bs", n_samples=n_samples)  # fmt: skip
                    _, results = test()
                    comparison.p_value = float(results["BLEU"][1].p_value)
                    comparison.note = "paired bootstrap, sacrebleu BLEU, best run vs best run"
                out.append(comparison)
    return out


def _lines(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").rstrip("\n").split("\n")


def _ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a and b else None


def verdicts(rows: list[Row], comparisons: list[Comparison]) -> dict[str, list[str]]:
    """Per task, one sentence per mechanism against the reference (soft if present, else the most accurate)."""
    out: dict[str, list[str]] = {}
    for task, group in itertools.groupby(sorted(rows, key=lambda r: r.task), key=lambda r: r.task):
        group = list(group)
        ref = next((r for r in group if r.mechanism == "soft"), max(group, key=lambda r: r.best))
        lines = []
        best = max(group, key=lambda r: r.mean)
        spread = f" ± {best.ci95:.2f}" if best.ci95 is not None else ""
        lines.append(f"most accurate: {best.mechanism} ({best.metric} {best.mean:.2f}{spread}, {best.seeds} seed(s))")
        for row in group:
            if row is ref:
                continue
            parts = [f"{row.mechanism} vs {ref.mechanism}: {row.best - ref.best:+.2f} {row.metric.split('/')[-1]}"]
            test = next(
                (c for c in comparisons if c.task == task and {c.a, c.b} == {row.mechanism, ref.mechanism}), None
            )
            if test is None or test.p_value is None:
                parts[0] += f" (significance not tested: {test.note if test else 'no pair'})"
            else:
                parts[0] += f", {'significant' if test.significant else 'not significant'} (p = {test.p_value:.3f})"
            speed = _ratio(ref.infer_ms_p50_b1, row.infer_ms_p50_b1)
            if speed and abs(speed - 1) < 0.05:
                parts.append("the same inference speed at batch 1")
            elif speed:
                parts.append(f"{speed:.2f}× faster" if speed > 1 else f"{1 / speed:.2f}× slower")
                parts[-1] += " inference at batch 1"
            if row.seed_std is not None and ref.seed_std:
                parts.append(f"{(row.seed_std / ref.seed_std) ** 2:.1f}× the seed variance")
            if row.failed_rate or ref.failed_rate:
                parts.append(f"{row.failed_rate:.0%} of its runs failed (vs {ref.failed_rate:.0%})")
            train = _ratio(row.train_samples_per_s, ref.train_samples_per_s)
            if train:
                parts.append(f"trains at {train:.2f}× the throughput")
            lines.append("; ".join(parts))
        out[task] = lines
    return out


# ─── plot data (rendered by both plotly and matplotlib, see render.py) ─────────────────────────
@dataclass
class Series:
    name: str
    x: list[float]
    y: list[float]
    mode: str = "markers"  # markers | lines | band (y = mean, low/high the band)
    low: list[float] | None = None
    high: list[float] | None = None
    labels: list[str] | None = None


@dataclass
class Plot:
    title: str
    x_label: str
    y_label: str
    series: list[Series]
    kind: str = "scatter"  # scatter | bar
    note: str = ""


def frontier(points: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """Points not beaten by another that is both lower on x (cost) and higher on y (accuracy)."""
    best, front = -math.inf, []
    for x, y in sorted(points, key=lambda p: (p[0], -p[1])):
        if y > best:
            front.append((x, y))
            best = y
    return front


def pareto_plots(task: str, rows: list[Row], collected: Collected) -> list[Plot]:
    metric = HEADLINE[task][0]
    latency = SPEED["infer_ms_p50_b1"]
    series = []
    for row in rows:
        runs = [r for r in collected.runs if r.task == task and r.mechanism == row.mechanism
                and r.status == "FINISHED" and r.accuracy is not None and latency in r.metrics]  # fmt: skip
        points = [(r.metrics[latency], r.accuracy) for r in runs]
        if points:
            # plotly renders hover text as HTML: a run name is text, so escape it
            labels = [html.escape(r.name) for r in runs]
            series.append(Series(row.mechanism, *map(list, zip(*points)), labels=labels))
            front = frontier(points)
            series.append(Series(f"{row.mechanism} frontier", *map(list, zip(*front)), mode="lines"))
    note = "every finished run; lines: each mechanism's Pareto frontier (lower latency, higher accuracy)"
    plots = [Plot(f"{task}: accuracy vs inference latency", "greedy latency, b1 (ms, p50)", metric, series, note=note)]
    seeded = [r for r in rows if r.seed_std is not None]
    if seeded:
        points = [(r.seed_std, r.mean) for r in seeded]
        series = [Series(r.mechanism, [r.seed_std], [r.mean]) for r in seeded]
        front = frontier(points)
        series.append(Series("frontier", *map(list, zip(*front)), mode="lines"))
        plots.append(Plot(f"{task}: accuracy vs seed spread", f"std of {metric} over seeds", f"mean {metric}", series,
                          note="one point per mechanism: its seed runs"))  # fmt: skip
    return plots


def learning_curves(task: str, rows: list[Row], tracking_uri: str) -> Plot:
    from .collect import metric_history

    key = HEADLINE[task][1]
    series = []
    for row in rows:
        histories = [dict(metric_history(tracking_uri, run_id, key)) for run_id in row.seed_run_ids]
        steps = sorted(set.intersection(*(set(h) for h in histories))) if histories else []
        if not steps:
            continue
        mean = [statistics.fmean(h[s] for h in histories) for s in steps]
        low = [min(h[s] for h in histories) for s in steps]
        high = [max(h[s] for h in histories) for s in steps]
        series.append(Series(f"{row.mechanism} ({len(histories)} seed(s))", steps, mean, "band", low, high))
    return Plot(f"{task}: learning curves", "training step", key, series, note="mean over seeds; band: min to max")


def importances(collected: Collected, rows: list[Row]) -> list[Plot]:
    """Hyperparameter importances (Optuna's fANOVA) of each search study the report can open."""
    import optuna

    from ..sweep.storage import HeartbeatJournalStorage

    plots = []
    by_study: dict[str, RunRecord] = {}
    for run in collected.runs:
        if run.kind == "trial" and run.study:
            by_study.setdefault(run.study, run)
    for study_name, run in sorted(by_study.items()):
        url = collected.storages.get(study_name, "")
        try:
            if url.startswith("journal:") and Path(url.removeprefix("journal:")).is_file():
                storage = HeartbeatJournalStorage(url.removeprefix("journal:"), 10, 60)
            elif url and "***" not in url:
                storage = url
            else:
                continue
            study = optuna.load_study(study_name=study_name, storage=storage)
            if len(study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))) < 4:
                continue  # importances from a handful of trials are noise (Optuna warns as much)
            values = optuna.importance.get_param_importances(study)
        except (RuntimeError, ValueError, KeyError):  # too few trials, or one value per parameter
            continue
        if values:
            names = list(values)
            plots.append(Plot(f"{run.task} / {run.mechanism}: hyperparameter importance ({study_name})", "importance",
                              "", [Series(run.mechanism, [values[n] for n in names], names)], kind="bar"))  # fmt: skip
    return plots
