"""Aggregation: collected runs -> one :class:`Row` per task × mechanism (or configuration of one), the record
every other part of the report reads; and the failed runs, each with its reason.

A row holds the best run, the seed runs pooled by :mod:`.grouping` (mean, and a 95 % CI only from
``min_seeds`` runs up), stability, speed, memory and how the mechanism attends, and its tuning budget in
trials and in compute (summed run wall-clock). Pure: runs in, records out.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import asdict, dataclass, field

from ..tracking import tags as T
from ..tracking.seeds import MIN_SEEDS_FOR_CI, seed_stats
from . import grouping, wording
from .collect import Collected, RunRecord

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

#: Row field -> the run metric it averages over the compared runs (speed and memory)
SPEED = {
    "train_samples_per_s": "speed/train_samples_per_s",
    "infer_ms_p50_b1": "speed/infer_latency_ms_p50_b1",
    "peak_rss_mb": "speed/peak_rss_mb",
    "rss_growth_mb": "speed/rss_growth_mb",
    "params": "speed/params",
}
_BATCH_LATENCY = "speed/infer_latency_ms_p50_b"  # + the batch size; the row shows the one that is not b1


@dataclass(kw_only=True)
class Row:
    """One task × mechanism, built by keyword. Accuracy is the runs' headline test metric; ``mean``/``ci95``
    over the seed runs (or the best run alone when there are none). The field order is the CSV's and JSON's."""

    task: str
    mechanism: str  # with its variant's label ("soft [task.lr=0.01]") when its runs' configs differ
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
        """Search trials of any outcome: the tuning budget."""
        return self.trials_complete + self.trials_pruned + self.trials_failed

    def values(self, key: str) -> list[float]:
        """The metric ``key`` of every compared run that logged it, in their order."""
        return [r.metrics[key] for r in self.compared if key in r.metrics]

    def as_dict(self) -> dict:
        """The fields, the compared runs as their ids (``compared_runs``): the CSV's and JSON's row."""
        data = asdict(self)
        data.pop("compared")
        return data | {"compared_runs": [r.run_id for r in self.compared]}


@dataclass
class Failure:
    """A run that failed, and why (its ``failure_reason``)."""

    task: str
    mechanism: str
    run: str
    run_id: str
    kind: str  # trial | seed | run
    reason: str


def _mean(values: list[float | None]) -> float | None:
    """The mean of the finite ``values`` (None where there are none)."""
    values = [v for v in values if v is not None and math.isfinite(v)]
    return statistics.fmean(values) if values else None


def _by_mechanism(collected: Collected) -> dict[tuple[str, str], list[RunRecord]]:
    """Every collected run by (task, mechanism), sorted."""
    groups: dict[tuple[str, str], list[RunRecord]] = {}
    for run in collected.runs:
        groups.setdefault((run.task, run.mechanism), []).append(run)
    return dict(sorted(groups.items()))


def _results(runs: list[RunRecord]) -> list[RunRecord]:
    """The runs that finished with their headline test metric."""
    return [r for r in runs if r.status == "FINISHED" and r.accuracy is not None]


def pooling_notes(collected: Collected) -> list[str]:
    """How :func:`summarise` grouped the runs wherever it was not simply one configuration a mechanism: the
    report's warnings (:func:`.grouping.variants`)."""
    notes = []
    for runs in _by_mechanism(collected).values():
        pooled = [r for r in _results(runs) if r.kind != "trial"]
        if pooled:
            notes += grouping.variants(pooled)[1]
    return notes


def summarise(collected: Collected, min_seeds: int = MIN_SEEDS) -> list[Row]:
    """One row per task × mechanism — or per configuration of a mechanism, where its runs' configs differ
    beyond the seed (:mod:`.grouping`): its seed runs pooled from every run kind and store; a mechanism with
    search trials alone is represented by its best run. Sorted by task, then mechanism."""
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
            rows.append(row_of(task, name, runs, results=pool, compared=variant.runs, min_seeds=min_seeds))
    return rows


def row_of(
    task: str,
    mechanism: str,
    runs: list[RunRecord],
    *,
    results: list[RunRecord],
    compared: list[RunRecord],
    min_seeds: int = MIN_SEEDS,
) -> Row:
    """The row of ``compared`` (the seed runs, or the best run), named ``mechanism``: ``runs`` every run of
    the mechanism (its budget and compute), ``results`` the finished ones its best run is chosen from; a CI
    from ``min_seeds`` compared runs up."""
    best = max(results, key=lambda r: r.accuracy)
    acc = seed_stats([r.accuracy for r in compared])
    enough = acc.n >= min_seeds and not math.isnan(acc.ci95)
    trials = [r for r in runs if r.kind == "trial"]
    # runs that ended on their own: pruned and interrupted ones (KILLED) are neither success nor failure
    ended = [r for r in runs if r.status in ("FINISHED", "FAILED")]
    failed = [r for r in ended if r.status == "FAILED"]
    batch_latency = [
        v for r in compared for k, v in r.metrics.items() if k.startswith(_BATCH_LATENCY) and not k.endswith("_b1")
    ]

    def mean_of(key: str) -> float | None:
        return _mean([r.metrics.get(key) for r in compared])

    return Row(
        task=task,
        mechanism=mechanism,
        metric=best.headline,
        best=best.accuracy,
        best_run=best.run_id,
        seeds=acc.n,
        mean=acc.mean,
        ci95=acc.ci95 if enough else None,
        ci_note="" if enough else wording.no_ci(acc.n),
        seed_std=acc.std if acc.n > 1 else None,
        runs=len(results),
        trials_complete=sum(r.optuna_state == "COMPLETE" for r in trials),
        trials_pruned=sum(r.optuna_state == "PRUNED" for r in trials),
        trials_failed=sum(r.optuna_state == "FAIL" and r.status == "FAILED" for r in trials),  # not the interrupted
        failed_rate=len(failed) / len(ended) if ended else 0.0,
        compute_s=sum(r.wall_s or 0.0 for r in runs),
        not_converged=sum(r.converged is False for r in compared),
        grad_norm_var=_mean([r.metrics.get("stability/grad_norm_std", math.nan) ** 2 for r in compared]),
        attention_entropy=mean_of("stability/attention_entropy"),
        infer_ms_p50_bB=_mean(batch_latency),
        control=best.trait("control"),
        compared=compared,
        **{name: mean_of(key) for name, key in SPEED.items()},
        **{name: mean_of(key) for name, key in ATTENTION_MEASURES.items()},
    )


def failures(collected: Collected) -> list[Failure]:
    """Every failed run, with its recorded reason, so that a report over failed runs says what went wrong."""
    return [
        Failure(r.task, r.mechanism, r.name, r.run_id, r.kind, r.tags.get(T.FAILURE_REASON, wording.NO_FAILURE_REASON))
        for r in collected.runs
        if r.status == "FAILED"
    ]


def by_task(rows: list[Row]) -> dict[str, list[Row]]:
    """``rows`` by task, each task's in their order."""
    out: dict[str, list[Row]] = {}
    for row in rows:
        out.setdefault(row.task, []).append(row)
    return out
