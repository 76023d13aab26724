"""From collected runs to what a trade-off report says — pure: runs, texts and numbers in, no I/O.

1. :func:`summarise` — one :class:`Row` per task × mechanism: the best run, the seed runs (mean, and a
   95 % CI only from ``min_seeds`` runs up), stability, speed, memory, the tuning budget in trials and
   in compute (summed run wall-clock).
2. :func:`pair_tests` — every pair of mechanisms of a task: the seed-level test the verdict rests on
   (:func:`.significance.seed_test`) and best run against best run (:func:`.significance.best_run_test`).
3. :func:`diagnose` — what makes a mechanism's figures not comparable: runs that stopped while still
   improving (*not converged*), *too few seeds*, *at the floor* (not significantly above the control
   mechanism, when one is in the comparison), and its budget.
4. :func:`verdicts` — one sentence per mechanism against the reference, each **withheld** with its
   reasons whenever what it would compare is not comparable, and a summary that names a winner only
   when the data supports one.
"""

from __future__ import annotations

import html
import itertools
import math
import statistics
from dataclasses import asdict, dataclass, field

from ..tracking import tags as T
from ..tracking.seeds import MIN_SEEDS_FOR_CI, seed_stats
from . import grouping
from . import significance as sig
from .collect import IMPORTANCE_EVALUATOR, Collected, RunRecord

#: Row field -> the run metric it averages over the compared runs
ATTENTION_MEASURES = {
    "align_aer": "test/align_aer",
    "align_precision": "test/align_precision",
    "align_recall": "test/align_recall",
    "zero_share": "test/attention_zero_share",
    "attended_positions": "test/attention_positions",
    "estimator_var": "stability/grad_estimator_var",
}
MIN_SEEDS = MIN_SEEDS_FOR_CI  # below this a confidence interval over seeds means little, and no verdict is given
COMPUTE_RATIO_NOTE = 2.0  # mention compute budgets that differ by more than this factor

SPEED = {
    "train_samples_per_s": "speed/train_samples_per_s",
    "infer_ms_p50_b1": "speed/infer_latency_ms_p50_b1",
    "peak_rss_mb": "speed/peak_rss_mb",
    "rss_growth_mb": "speed/rss_growth_mb",
    "params": "speed/params",
}


@dataclass
class Row:
    """One task × mechanism. Accuracy is the runs' headline test metric; ``mean``/``ci95`` over the seed
    runs (or the best run alone when there are none)."""

    task: str
    mechanism: str
    metric: str
    best: float
    best_run: str
    seeds: int
    mean: float
    ci95: float | None  # None below min_seeds: see ci_note
    ci_note: str  # "n = 2: no CI" when there are too few seed runs for an interval to mean anything
    seed_std: float | None
    runs: int  # finished result runs of any kind
    trials_complete: int
    trials_pruned: int
    trials_failed: int
    failed_rate: float  # failed / (all trials or runs that ended)
    compute_s: float  # summed wall-clock of every run of this mechanism (trials, seeds, single runs)
    not_converged: int  # compared runs that stopped while still improving
    grad_norm_var: float | None
    attention_entropy: float | None
    train_samples_per_s: float | None
    infer_ms_p50_b1: float | None
    infer_ms_p50_bB: float | None
    peak_rss_mb: float | None
    rss_growth_mb: float | None
    params: float | None
    control: bool = False  # the mechanism does not attend: the floor the others must beat
    # how it attends, on the test set: alignment against gold attention (built-in data), sparsity; and how
    # random its gradient estimate is (mechanisms that sample or relax their choice)
    align_aer: float | None = None
    align_precision: float | None = None
    align_recall: float | None = None
    zero_share: float | None = None
    attended_positions: float | None = None
    estimator_var: float | None = None
    compared: list[RunRecord] = field(default_factory=list)  # the seed runs (or the best run)

    @property
    def trials(self) -> int:
        return self.trials_complete + self.trials_pruned + self.trials_failed

    def values(self, key: str) -> list[float]:
        """A metric of every compared run (those that logged it)."""
        return [r.metrics[key] for r in self.compared if key in r.metrics]

    def as_dict(self) -> dict:
        data = asdict(self)
        data.pop("compared")
        return data | {"compared_runs": [r.run_id for r in self.compared]}


def _mean(values: list[float | None]) -> float | None:
    values = [v for v in values if v is not None and math.isfinite(v)]
    return statistics.fmean(values) if values else None


def _by_mechanism(collected: Collected) -> dict[tuple[str, str], list[RunRecord]]:
    groups: dict[tuple[str, str], list[RunRecord]] = {}
    for run in collected.runs:
        groups.setdefault((run.task, run.mechanism), []).append(run)
    return dict(sorted(groups.items()))


def _results(runs: list[RunRecord]) -> list[RunRecord]:
    return [r for r in runs if r.status == "FINISHED" and r.accuracy is not None]


def pooling_notes(collected: Collected) -> list[str]:
    """How :func:`summarise` grouped the runs wherever it was not simply one configuration a mechanism."""
    notes = []
    for runs in _by_mechanism(collected).values():
        pooled = [r for r in _results(runs) if r.kind != "trial"]
        if pooled:
            notes += grouping.variants(pooled)[1]
    return notes


def summarise(collected: Collected, min_seeds: int = MIN_SEEDS) -> list[Row]:
    """One row per task × mechanism — or per configuration of a mechanism, where its runs' configs differ
    beyond the seed (:mod:`.grouping`): its seed runs pooled from every run kind and store."""
    rows = []
    for (task, mechanism), runs in _by_mechanism(collected).items():
        results = _results(runs)
        if not results:
            continue
        pooled = [r for r in results if r.kind != "trial"]
        found = grouping.variants(pooled)[0] if pooled else []
        if not found:  # a search alone: its best run stands for the mechanism
            found = [grouping.Variant("", [max(results, key=lambda r: r.accuracy)])]
        for variant in found:
            name = f"{mechanism} [{variant.label}]" if variant.label else mechanism
            pool = results if len(found) == 1 else variant.runs
            rows.append(_row(task, name, runs, pool, variant.runs, min_seeds))
    return rows


def _row(task: str, mechanism: str, runs: list[RunRecord], results: list[RunRecord], compared: list[RunRecord],
         min_seeds: int) -> Row:  # fmt: skip
    """The row of ``compared`` (the seed runs, or the best run); ``runs`` every run of the mechanism (its
    budget and compute), ``results`` the finished ones its best run is chosen from."""
    best = max(results, key=lambda r: r.accuracy)
    acc = seed_stats([r.accuracy for r in compared])
    enough = acc.n >= min_seeds and not math.isnan(acc.ci95)
    trials = [r for r in runs if r.kind == "trial"]
    # runs that ended on their own: pruned and interrupted ones (KILLED) are neither success nor failure
    ended = [r for r in runs if r.status in ("FINISHED", "FAILED")]
    failed = [r for r in ended if r.status == "FAILED"]
    batch_latency = [v for r in compared for k, v in r.metrics.items()
                     if k.startswith("speed/infer_latency_ms_p50_b") and not k.endswith("_b1")]  # fmt: skip
    return Row(
        task, mechanism, best.headline, best.accuracy, best.run_id, acc.n, acc.mean,
        acc.ci95 if enough else None, "" if enough else f"n = {acc.n}: no CI",
        acc.std if acc.n > 1 else None, len(results),
        sum(r.optuna_state == "COMPLETE" for r in trials), sum(r.optuna_state == "PRUNED" for r in trials),
        sum(r.optuna_state == "FAIL" and r.status == "FAILED" for r in trials),  # not the interrupted
        len(failed) / len(ended) if ended else 0.0,
        sum(r.wall_s or 0.0 for r in runs),
        sum(r.converged is False for r in compared),
        _mean([r.metrics.get("stability/grad_norm_std", math.nan) ** 2 for r in compared]),
        _mean([r.metrics.get("stability/attention_entropy") for r in compared]),
        *(_mean([r.metrics.get(SPEED[k]) for r in compared]) for k in ("train_samples_per_s", "infer_ms_p50_b1")),
        _mean(batch_latency),
        *(_mean([r.metrics.get(SPEED[k]) for r in compared]) for k in ("peak_rss_mb", "rss_growth_mb", "params")),
        control=best.trait("control"), compared=compared,
        **{field: _mean([r.metrics.get(key) for r in compared]) for field, key in ATTENTION_MEASURES.items()},
    )  # fmt: skip


@dataclass
class Failure:
    """A run that failed, and why (its ``failure_reason``)."""

    task: str
    mechanism: str
    run: str
    run_id: str
    kind: str  # trial | seed | run
    reason: str


def failures(collected: Collected) -> list[Failure]:
    """Every failed run, so that a report over failed runs says what went wrong."""
    return [Failure(r.task, r.mechanism, r.name, r.run_id, r.kind, r.tags.get(T.FAILURE_REASON, "no reason recorded"))
            for r in collected.runs if r.status == "FAILED"]  # fmt: skip


def by_task(rows: list[Row]) -> dict[str, list[Row]]:
    out: dict[str, list[Row]] = {}
    for row in rows:
        out.setdefault(row.task, []).append(row)
    return out


# ─── significance ──────────────────────────────────────────────────────────────────────────────
Predictions = dict[str, tuple[list[str], list[list[str]]]]  # run id -> (hypotheses, references)


@dataclass
class PairTest:
    """Mechanism ``a`` against ``b`` (``a`` the more accurate by mean)."""

    task: str
    a: str
    b: str
    metric: str
    a_mean: float
    b_mean: float
    a_best: float
    b_best: float
    seed: sig.SeedTest | None = None
    seed_note: str = ""  # why the seed-level test was not run
    best_p: float | None = None  # best run vs best run
    best_note: str = ""

    @property
    def p_value(self) -> float | None:
        return None if self.seed is None else self.seed.p_value

    @property
    def significant(self) -> bool | None:
        return None if self.seed is None else self.seed.significant

    def involves(self, x: str, y: str) -> bool:
        return {self.a, self.b} == {x, y}

    def as_dict(self) -> dict:
        data = asdict(self)
        data["seed"] = None if self.seed is None else asdict(self.seed) | {"test": self.seed.name}
        return data | {"p_value": self.p_value, "significant": self.significant}


def _items(row: Row, preds: Predictions) -> tuple[list, list[list[str]] | None, str, str]:
    """Per compared run its per-item statistics of the row's metric: ``(statistics, references, statistic
    name, why not)`` — none (and why) when the runs logged no predictions, name no statistics, or differ."""
    names = {r.tags.get(T.ITEM_STATISTICS) for r in row.compared}
    if len(names) != 1 or None in names or next(iter(names)) not in sig.ITEM_STATISTICS:
        return [], None, "", f"{row.mechanism}'s runs record no per-item statistics of {row.metric}"
    name = next(iter(names))
    runs = [r for r in row.compared if r.run_id in preds]
    if len(runs) < len(row.compared):
        return [], None, "", f"{row.mechanism} logged no test predictions"
    references = preds[runs[0].run_id][1]
    if any(preds[r.run_id][1] != references for r in runs):
        return [], None, "", f"{row.mechanism}'s runs were tested on different test sets"
    items = sig.ITEM_STATISTICS[name].items
    return [items(preds[r.run_id][0], references) for r in runs], references, name, ""


def pair_tests(rows: list[Row], preds: Predictions, samples: int = sig.BOOTSTRAP_SAMPLES) -> list[PairTest]:
    """Every pair of rows of a task: the seed-level test on the metric the table shows (with the bootstrap over
    test items where both sides have per-item statistics of it), and best run vs best run."""
    out = []
    for task, group in by_task(rows).items():
        items = {row.mechanism: _items(row, preds) for row in group}
        for a, b in itertools.combinations(sorted(group, key=lambda r: (-r.mean, r.mechanism)), 2):
            test = PairTest(task, a.mechanism, b.mechanism, a.metric, a.mean, b.mean, a.best, b.best)
            (sa, ra, name_a, na), (sb, rb, name_b, nb) = items[a.mechanism], items[b.mechanism]
            comparable = not (na or nb) and ra == rb and name_a == name_b
            why = na or nb or ("" if comparable else "the mechanisms were tested on different test sets")
            values_a, values_b = [r.accuracy for r in a.compared], [r.accuracy for r in b.compared]
            if a.metric != b.metric:
                test.seed_note = test.best_note = f"different metrics: {a.metric} and {b.metric}"
            elif min(len(values_a), len(values_b)) < 2:
                test.seed_note = "the test over seeds needs at least 2 seed runs a side"
            else:
                test.seed = sig.seed_test(values_a, values_b, sa if comparable else None, sb if comparable else None,
                                          name_a if comparable else "", samples)  # fmt: skip
                if why:
                    test.seed_note = f"over seeds only: {why}"
            best_a, best_b = preds.get(a.best_run), preds.get(b.best_run)
            if not comparable or best_a is None or best_b is None or a.metric != b.metric:
                test.best_note = test.best_note or why or "a best run logged no test predictions"
            else:
                statistic = sig.ITEM_STATISTICS[name_a]
                test.best_p = sig.best_run_test(statistic.items(best_a[0], ra), statistic.items(best_b[0], rb),
                                                name_a, samples)  # fmt: skip
                test.best_note = f"paired bootstrap over test items ({statistic.name}), best run vs best run"
            out.append(test)
    return out


def find_test(tests: list[PairTest], task: str, x: str, y: str) -> PairTest | None:
    return next((t for t in tests if t.task == task and t.involves(x, y)), None)


def difference(test: PairTest, x: str) -> float:
    """The seed-level difference of the metric as seen from ``x`` (positive: ``x`` is better)."""
    assert test.seed is not None
    return test.seed.delta if test.a == x else -test.seed.delta


# ─── diagnostics ───────────────────────────────────────────────────────────────────────────────
@dataclass
class Diagnosis:
    """What stands between a mechanism's figures and a fair comparison."""

    task: str
    mechanism: str
    seeds: int
    min_seeds: int
    not_converged: list[str]  # names of compared runs that stopped while still improving
    unrecorded: list[str]  # compared runs that recorded no convergence outcome
    compared_runs: int
    trials: int
    compute_s: float
    control: bool = False
    at_floor: bool | None = None  # None: no control in the comparison (or this is it), or not testable
    floor_note: str = ""
    curves: dict[str, list[float]] = field(default_factory=dict)  # the not-converged runs' learning curves

    @property
    def too_few_seeds(self) -> bool:
        return self.seeds < self.min_seeds

    @property
    def flags(self) -> list[str]:
        out = []
        if self.not_converged:
            out.append(f"not converged: {len(self.not_converged)} of {self.compared_runs} runs stopped while "
                       f"still improving")  # fmt: skip
        if self.unrecorded:
            out.append(f"convergence unknown: {len(self.unrecorded)} of {self.compared_runs} runs recorded none")
        if self.too_few_seeds:
            out.append(f"too few seeds: n = {self.seeds} (a CI and a verdict need {self.min_seeds})")
        if self.at_floor:
            out.append(f"at the floor: {self.floor_note}")
        return out

    def as_dict(self) -> dict:
        return asdict(self) | {"too_few_seeds": self.too_few_seeds, "flags": self.flags}


def diagnose(rows: list[Row], tests: list[PairTest], curves: dict[str, list[float]] | None = None,
             min_seeds: int = MIN_SEEDS) -> list[Diagnosis]:  # fmt: skip
    """Per task × mechanism. ``curves``: run id -> validation metric per epoch (evidence for the flags)."""
    curves = curves or {}
    out = []
    for task, group in by_task(rows).items():
        control = next((r for r in group if r.control), None)
        for row in group:
            stuck = [r for r in row.compared if r.converged is False]
            d = Diagnosis(task, row.mechanism, row.seeds, min_seeds, [r.name for r in stuck],
                          [r.name for r in row.compared if r.converged is None], len(row.compared), row.trials,
                          row.compute_s, row.control, curves={r.name: curves[r.run_id] for r in stuck
                                                              if r.run_id in curves})  # fmt: skip
            if control is not None and row is not control:
                test = find_test(tests, task, row.mechanism, control.mechanism)
                if test is None or test.seed is None:
                    d.floor_note = f"not tested against {control.mechanism}: {test.seed_note if test else 'no pair'}"
                else:
                    gain = difference(test, row.mechanism)
                    d.at_floor = not (gain > 0 and test.seed.significant)
                    unit = unit_of(row.metric)
                    d.floor_note = (f"{gain:+.2f} {unit} against the {control.mechanism} control "
                                    f"(p = {test.seed.p_value:.3f})")  # fmt: skip
            out.append(d)
    return out


# ─── verdicts ──────────────────────────────────────────────────────────────────────────────────
@dataclass
class PairVerdict:
    mechanism: str
    reference: str
    text: str  # the comparison as it would read; shown only when nothing is withheld
    withheld: str = ""  # why no verdict is given (see :func:`explain`); empty: stated

    @property
    def line(self) -> str:
        return f"{self.mechanism} vs {self.reference}: inconclusive: {self.withheld}" if self.withheld else self.text


@dataclass
class TaskVerdict:
    task: str
    reference: str
    summary: str
    pairs: list[PairVerdict]
    withheld: bool = False  # the summary names no winner because something was not comparable

    @property
    def lines(self) -> list[str]:
        return [self.summary, *(p.line for p in self.pairs)]

    def as_dict(self) -> dict:
        return asdict(self) | {"lines": self.lines}


@dataclass(frozen=True)
class Blocker:
    """One reason a comparison is not fair: ``kind`` groups it, ``mechanism`` says whose, ``detail`` how."""

    kind: str  # not converged | unrecorded | too few seeds | unequal budgets | floor | untestable
    mechanism: str
    detail: str


def not_comparable(row: Row, d: Diagnosis) -> list[Blocker]:
    out = []
    if d.not_converged:
        out.append(Blocker("not converged", row.mechanism, f"{len(d.not_converged)} of {d.compared_runs} runs"))
    if d.unrecorded:
        out.append(Blocker("unrecorded", row.mechanism, f"{len(d.unrecorded)} of {d.compared_runs} runs"))
    if d.too_few_seeds:
        out.append(Blocker("too few seeds", row.mechanism, str(row.seeds)))
    return out


def budget_blockers(x: Row, ref: Row) -> list[Blocker]:
    if x.trials != ref.trials:
        return [Blocker("unequal budgets", x.mechanism, f"{x.mechanism} {x.trials}, {ref.mechanism} {ref.trials}")]
    return []


def explain(blockers: list[Blocker], min_seeds: int = MIN_SEEDS) -> str:
    """Blockers as one sentence, grouped by kind: ``hard did not converge in 3 of 3 runs; raise …``."""
    by_kind: dict[str, list[Blocker]] = {}
    for b in dict.fromkeys(blockers):
        by_kind.setdefault(b.kind, []).append(b)
    parts = []
    for kind, found in by_kind.items():
        if kind == "not converged":
            first, *rest = found
            text = f"{first.mechanism} did not converge in {first.detail}"
            text += "".join(f", {b.mechanism} in {b.detail}" for b in rest)
            parts.append(text + "; raise trainer.max_epochs")
        elif kind == "unrecorded":
            listing = ", ".join(f"{b.mechanism} {b.detail}" for b in found)
            parts.append(f"no convergence record ({listing}): rerun with this version")
        elif kind == "too few seeds":
            listing = ", ".join(f"{b.mechanism} {b.detail}" for b in found)
            parts.append(f"too few seed runs ({listing}; a verdict needs {min_seeds}: seeds: [0, 1, 2])")
        elif kind == "unequal budgets":
            parts.append("unequal tuning budgets in trials (" + "; ".join(b.detail for b in found) + ")")
        else:
            parts += [b.detail for b in found]
    return "; ".join(parts)


def _facts(x: Row, ref: Row, min_seeds: int) -> list[str]:
    """Ratios of per-seed figures, each only from ``min_seeds`` runs a side and where it is larger than the
    noise between seeds (Welch's t-test for means, the F-test for the seed variance)."""
    out = []
    for key, what, faster_if_lower in (("speed/infer_latency_ms_p50_b1", "inference at batch 1", True),
                                       ("speed/train_samples_per_s", "training throughput", False)):  # fmt: skip
        xs, rs = x.values(key), ref.values(key)
        p = sig.welch_p(xs, rs)
        if p is None or min(len(xs), len(rs)) < min_seeds:
            continue
        if p >= 0.05:
            out.append(f"{what}: no significant difference (Welch p = {p:.2f})")
            continue
        mean_x, mean_r = statistics.fmean(xs), statistics.fmean(rs)
        ratio = mean_r / mean_x if faster_if_lower else mean_x / mean_r
        word = "faster" if ratio > 1 else "slower"
        out.append(f"{what}: {max(ratio, 1 / ratio):.2f}× {word} (Welch p = {p:.3f})")
    xs, rs = [r.accuracy for r in x.compared], [r.accuracy for r in ref.compared]
    p = sig.variance_ratio_p(xs, rs)
    # a variance from two values has one degree of freedom: never a finding, whatever min_seeds says
    if p is not None and p < 0.05 and min(len(xs), len(rs)) >= max(3, min_seeds):
        ratio = statistics.variance(xs) / statistics.variance(rs)
        size = f"{ratio:.1f}× the" if ratio >= 1 else f"1/{1 / ratio:.0f} of the"
        out.append(f"{size} seed variance (F-test p = {p:.3f})")
    if x.failed_rate or ref.failed_rate:
        out.append(f"{x.failed_rate:.0%} of its runs failed (vs {ref.failed_rate:.0%})")
    low, high = sorted((x.compute_s, ref.compute_s))
    if low and high / low > COMPUTE_RATIO_NOTE:
        out.append(f"compute: {x.compute_s / ref.compute_s:.1f}× its run time")
    return out


def choose_reference(group: list[Row], requested: str | None = None) -> Row:
    """The mechanism every other is compared with: ``requested``, else ``soft`` when present (the usual
    baseline), else the most accurate non-control mechanism."""
    names = {r.mechanism: r for r in group}
    if requested:
        if requested not in names:
            raise LookupError(f"reference mechanism {requested!r} is not in the report; mechanisms: {', '.join(names)}")
        return names[requested]
    if "soft" in names:
        return names["soft"]
    candidates = [r for r in group if not r.control] or group
    return max(candidates, key=lambda r: (r.mean, r.mechanism))


def verdicts(rows: list[Row], tests: list[PairTest], diagnoses: list[Diagnosis], reference: str | None = None,
             min_seeds: int = MIN_SEEDS) -> dict[str, TaskVerdict]:  # fmt: skip
    out = {}
    diag = {(d.task, d.mechanism): d for d in diagnoses}
    for task, group in by_task(rows).items():
        ref = choose_reference(group, reference)
        blockers = {r.mechanism: not_comparable(r, diag[task, r.mechanism]) for r in group}
        pairs = []
        for row in group:
            if row is ref:
                continue
            found = blockers[row.mechanism] + blockers[ref.mechanism] + budget_blockers(row, ref)
            if diag[task, row.mechanism].at_floor and diag[task, ref.mechanism].at_floor:
                detail = f"neither {row.mechanism} nor {ref.mechanism} beats the control significantly"
                found.append(Blocker("floor", row.mechanism, detail))
            test = find_test(tests, task, row.mechanism, ref.mechanism)
            if test is None or test.seed is None:
                detail = f"significance cannot be tested: {test.seed_note if test else 'no pair'}"
                found.append(Blocker("untestable", row.mechanism, detail))
            pairs.append(
                PairVerdict(
                    row.mechanism, ref.mechanism, _pair_text(row, ref, test, min_seeds), explain(found, min_seeds)
                )
            )
        out[task] = _summary(task, group, ref, pairs, tests, blockers, min_seeds)
    return out


def _pair_text(row: Row, ref: Row, test: PairTest | None, min_seeds: int) -> str:
    unit = unit_of(row.metric)
    text = f"{row.mechanism} vs {ref.mechanism}: {row.mean - ref.mean:+.2f} {unit} "
    text += f"(mean of {row.seeds} vs {ref.seeds} seeds)"
    if test is None or test.seed is None:
        return text
    s = test.seed
    delta = difference(test, row.mechanism)
    low, high = (s.ci_low, s.ci_high) if test.a == row.mechanism else (-s.ci_high, -s.ci_low)
    verdict = "tie" if delta == 0 else ("significant" if s.significant else "not significant")
    text += f", {verdict} ({describe_test(s, delta, low, high, unit)})"
    if test.best_p is not None:
        text += f"; best run vs best run {row.best - ref.best:+.2f}, p = {test.best_p:.3f}"
    facts = _facts(row, ref, min_seeds)
    return "; ".join([text, *facts])


def unit_of(metric: str) -> str:
    """How a difference in ``metric`` is written: ``test/bleu`` -> BLEU, ``test/bleu4`` -> BLEU-4."""
    name = metric.split("/")[-1]
    return {"bleu": "BLEU", "bleu4": "BLEU-4", "cider": "CIDEr-D"}.get(name, name)


def describe_test(s: sig.SeedTest, delta: float, low: float, high: float, unit: str) -> str:
    """The seed-level test in words: the difference, its interval, p, n, the effect size and the test's power."""
    parts = [f"{s.name}: Δ {delta:+.2f} {unit}, 95 % CI {low:+.2f} to {high:+.2f} over seeds, p = {s.p_value:.3f}",
             f"n = {s.n_a} and {s.n_b} seeds" + (f" × {s.n_items} test items" if s.n_items else "")]  # fmt: skip
    if s.hedges_g is not None:
        parts.append(f"Hedges' g {abs(s.hedges_g):.1f}")
    if s.detectable is not None:
        parts.append(f"finds a true {s.detectable:.2f} {unit} with 80 % power")
    return ", ".join(parts)


def _summary(task: str, group: list[Row], ref: Row, pairs: list[PairVerdict], tests: list[PairTest],
             blockers: dict[str, list[Blocker]], min_seeds: int) -> TaskVerdict:  # fmt: skip
    leader = sorted(group, key=lambda r: (-r.mean, r.mechanism))[0]
    others = [r for r in group if r is not leader]
    found = [b for r in group for b in blockers[r.mechanism]]
    found += [b for other in others for b in budget_blockers(other, leader)]
    untested = []
    tied = []
    for other in others:
        test = find_test(tests, task, leader.mechanism, other.mechanism)
        if test is None or test.seed is None:
            untested.append(other.mechanism)
        elif not test.seed.significant or difference(test, leader.mechanism) <= 0:
            tied.append((other.mechanism, test.seed.p_value))
    if untested:
        detail = f"significance cannot be tested against {', '.join(untested)}"
        found.append(Blocker("untestable", leader.mechanism, detail))
    if found:
        return TaskVerdict(task, ref.mechanism, "inconclusive: " + explain(found, min_seeds), pairs, withheld=True)
    spread = f" ± {leader.ci95:.2f} (95 % CI)" if leader.ci95 is not None else ""
    if tied:
        names = ", ".join(f"{m} (p = {p:.3f})" for m, p in tied)
        text = (f"no single winner: {leader.mechanism} ({leader.metric} {leader.mean:.2f}{spread}) does not differ "
                f"significantly from {names}")  # fmt: skip
    else:
        text = (f"most accurate: {leader.mechanism} ({leader.metric} {leader.mean:.2f}{spread} over {leader.seeds} "
                f"seeds), significantly above every other mechanism")  # fmt: skip
    return TaskVerdict(task, ref.mechanism, text, pairs)


def budget_warnings(rows: list[Row]) -> list[str]:
    """Mechanisms of one task tuned with different budgets are not compared like with like: say so."""
    warnings = []
    for task, group in by_task(rows).items():
        trials = {r.mechanism: r.trials for r in group}
        if len(set(trials.values())) > 1:
            listing = ", ".join(f"{m} {n}" for m, n in trials.items())
            warnings.append(f"{task}: tuning budgets differ between mechanisms (trials: {listing})")
    return warnings


# ─── plot data (rendered by both plotly and matplotlib, see render.py) ─────────────────────────
@dataclass
class Series:
    name: str
    x: list[float]
    y: list[float]
    mode: str = "markers"  # markers | lines | dashed | band (y = mean, low/high the band)
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
    task: str = ""


def frontier(points: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """Points not beaten by another that is both lower on x (cost) and higher on y (accuracy)."""
    best, front = -math.inf, []
    for x, y in sorted(points, key=lambda p: (p[0], -p[1])):
        if y > best:
            front.append((x, y))
            best = y
    return front


def pareto_plots(task: str, rows: list[Row], collected: Collected) -> list[Plot]:
    metric = rows[0].metric
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
    plots = [Plot(f"{task}: accuracy vs inference latency", "greedy latency, b1 (ms, p50)", metric, series, note=note,
                  task=task)]  # fmt: skip
    seeded = [r for r in rows if r.seed_std is not None]
    if seeded:
        points = [(r.seed_std, r.mean) for r in seeded]
        series = [Series(f"{r.mechanism} (n = {r.seeds})", [r.seed_std], [r.mean]) for r in seeded]
        front = frontier(points)
        series.append(Series("frontier", *map(list, zip(*front)), mode="lines"))
        plots.append(Plot(f"{task}: accuracy vs seed spread", f"std of {metric} over seeds", f"mean {metric}", series,
                          note="one point per mechanism: its seed runs", task=task))  # fmt: skip
    return plots


def learning_curves(task: str, rows: list[Row], curves: dict[str, list[float]], key: str) -> Plot:
    """Mean and min–max band over each mechanism's compared runs, per epoch; runs that stopped while still
    improving are drawn on their own (dashed): the evidence for a *not converged* flag."""
    series = []
    for row in rows:
        histories = [curves[r.run_id] for r in row.compared if curves.get(r.run_id)]
        if not histories:
            continue
        epochs = range(max(len(h) for h in histories))
        at = [[h[e] for h in histories if e < len(h)] for e in epochs]
        x = [e + 1 for e in epochs]
        series.append(Series(f"{row.mechanism} ({len(histories)} run(s))", x, [statistics.fmean(v) for v in at],
                             "band", [min(v) for v in at], [max(v) for v in at]))  # fmt: skip
        for run in row.compared:
            if run.converged is False and curves.get(run.run_id):
                values = curves[run.run_id]
                series.append(Series(f"{html.escape(run.name)}: still improving", list(range(1, len(values) + 1)),
                                     values, "dashed"))  # fmt: skip
    note = ("mean over each mechanism's compared runs (its seed runs); band: min to max; dashed: a run that stopped "
            "at the epoch cap while still improving")  # fmt: skip
    return Plot(f"{task}: learning curves", "epoch", key, series, note=note, task=task)


def importance_plots(collected: Collected, values: dict[str, dict[str, float]]) -> list[Plot]:
    """One bar chart per study with importances (see :func:`.collect.importances`)."""
    plots = []
    for study_name, found in sorted(values.items()):
        run = next(r for r in collected.runs if r.study == study_name)
        names = list(found)
        plots.append(Plot(f"{run.task} / {run.mechanism}: hyperparameter importance ({study_name})", "importance", "",
                          [Series(run.mechanism, [found[n] for n in names], names)], kind="bar",
                          note=f"evaluator: {IMPORTANCE_EVALUATOR}", task=run.task))  # fmt: skip
    return plots
