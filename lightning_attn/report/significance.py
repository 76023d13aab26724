"""Significance tests a report rests on (pure: numbers and texts in, results out; no I/O).

* :func:`seed_test` — the verdict's test, on the very metric the table shows, for any task. Two parts,
  and a difference is significant only when **both** find it (an intersection-union test, so its
  false-positive rate is at most that of either part):

  1. **over seeds** — Welch's t-test on the per-seed values of the metric: would another seed differ?
     It needs nothing but the values (any task), gives a 95 % interval of the difference, Hedges' g, and
     the smallest difference it detects with 80 % power at these seeds and spreads (what the report
     states as its power). With 3 seeds a side its false-positive rate stays below α; a bootstrap that
     resamples 3 seeds cannot see their variance and does not (``tests/report/test_calibration.py``).
  2. **over test items** — where the task provides per-item statistics of that metric
     (:data:`ITEM_STATISTICS`: sacreBLEU's sufficient statistics for translation, torchmetrics' BLEU-4
     counts for captioning), a two-level bootstrap over seeds and test items: each replicate resamples
     the items (the same for every run: paired) and, for each mechanism, its seed runs; the statistic is
     the difference of the mean corpus scores. Would other test sentences differ?

  The p-value is the larger of the two; ties are never significant.
* :func:`best_run_test` — the best run of each mechanism against the other's, a paired bootstrap over
  the test items on the same metric (the second column of the report: one seed each).
* :func:`welch_p` and :func:`variance_ratio_p` — whether a ratio of per-seed figures (latency,
  throughput, seed variance) is larger than noise, before a report states it.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ..bleu import bleu4_many, bleu4_statistics, corpus_bleu_many, sentence_statistics

BOOTSTRAP_SAMPLES = 1000  # resamples per test (the report's --bootstrap-samples)
ALPHA = 0.05
POWER = 0.8  # the power at which the report states the smallest detectable difference


@dataclass(frozen=True)
class ItemStatistics:
    """How a task's headline metric decomposes into per-item statistics that sum over a corpus."""

    name: str  # what the report calls the metric
    items: Callable[[list[str], list[list[str]]], np.ndarray]  # (hypotheses, references) -> (n_items, k)
    score: Callable[[np.ndarray], np.ndarray]  # summed statistics (..., k) -> the metric (...)


#: by the name a run's ``metric.item_statistics`` tag gives (its task sets it)
ITEM_STATISTICS = {
    "sacrebleu": ItemStatistics("sacreBLEU (13a, exponential smoothing)", sentence_statistics, corpus_bleu_many),
    "bleu4": ItemStatistics("BLEU-4 (whitespace tokens, no smoothing: torchmetrics')", bleu4_statistics, bleu4_many),
}


def references_by_position(references: list[list[str]]) -> list[list[str]]:
    """Per-sentence reference lists -> sacrebleu's layout (one list per reference position), short
    lists padded with their first reference (sacrebleu wants every sentence to have as many)."""
    width = max(len(refs) for refs in references)
    return [[refs[i] if i < len(refs) else refs[0] for refs in references] for i in range(width)]


@dataclass
class SeedTest:
    """The result of :func:`seed_test` (a minus b)."""

    n_a: int  # seed runs of a
    n_b: int
    mean_a: float  # mean of a's per-seed values of the metric (what the table shows)
    mean_b: float
    delta: float  # mean_a - mean_b
    ci_low: float  # 95 % interval of delta over seeds (Welch)
    ci_high: float
    welch_p: float
    hedges_g: float | None  # delta in pooled seed standard deviations (None: no spread at all)
    detectable: float | None  # the smallest |delta| found with 80 % power at these seeds and spreads
    n_items: int = 0  # test items of the bootstrap part (0: the task gave no per-item statistics)
    items_p: float | None = None
    items_ci_low: float | None = None
    items_ci_high: float | None = None
    statistic: str = ""  # ITEM_STATISTICS name of the bootstrap part
    samples: int = 0

    @property
    def p_value(self) -> float:
        return max(self.welch_p, self.items_p if self.items_p is not None else 0.0)

    @property
    def significant(self) -> bool:
        return self.p_value < ALPHA

    @property
    def name(self) -> str:
        over_items = f" and a two-level bootstrap over seeds × {self.n_items} test items" if self.n_items else ""
        return f"Welch's t-test over seeds{over_items}"


def _welch(a: np.ndarray, b: np.ndarray) -> tuple[float, float, float, float]:
    """``(p, df, standard error, t critical)`` of Welch's test of mean(a) - mean(b)."""
    from scipy import stats

    va, vb = a.var(ddof=1) / len(a), b.var(ddof=1) / len(b)
    se = math.sqrt(va + vb)
    delta = float(a.mean() - b.mean())
    if se == 0:
        return (1.0 if delta == 0 else 0.0), math.inf, 0.0, float(stats.norm.ppf(1 - ALPHA / 2))
    df = (va + vb) ** 2 / (va**2 / (len(a) - 1) + vb**2 / (len(b) - 1))
    p = float(2 * stats.t.sf(abs(delta) / se, df))
    return p, df, se, float(stats.t.ppf(1 - ALPHA / 2, df))


def detectable_difference(se: float, df: float, power: float = POWER) -> float | None:
    """The true difference Welch's test finds with probability ``power`` at ``ALPHA``, given its standard
    error and degrees of freedom (noncentral t); None when there is no spread to speak of."""
    from scipy import optimize, stats

    if not se or not math.isfinite(df):
        return None
    crit = stats.t.ppf(1 - ALPHA / 2, df)

    def shortfall(nc: float) -> float:  # power at a true difference of nc standard errors, less the target
        wrong_side = float(stats.nct.cdf(-crit, df, nc))  # negligible, and NaN where scipy's series fails
        return float(stats.nct.sf(crit, df, nc)) + (wrong_side if math.isfinite(wrong_side) else 0.0) - power

    high = crit + 1.0
    while shortfall(high) < 0 and high < 1e3:  # far enough out that the power exceeds the target
        high *= 2
    return float(optimize.brentq(shortfall, 0.0, high)) * se


def seed_test(values_a: list[float], values_b: list[float], items_a: list[np.ndarray] | None = None,
              items_b: list[np.ndarray] | None = None, statistic: str = "", samples: int = BOOTSTRAP_SAMPLES,
              seed: int = 0) -> SeedTest:  # fmt: skip
    """The verdict's test of a against b (see the module's docstring).

    Args:
        values_a: each seed run's value of the metric the table shows, for a (at least 2).
        values_b: the same for b (at least 2).
        items_a: per seed run of a (same order), its per-item statistics over the shared test set; with
            ``statistic`` (a key of :data:`ITEM_STATISTICS`) they add the bootstrap over test items.
        items_b: the same for b.
        statistic: which per-item statistic ``items_a`` and ``items_b`` hold (empty: none).
        samples: bootstrap replicates.
        seed: the resampling seed (a report is reproducible).
    """
    a, b = np.asarray(values_a, dtype=np.float64), np.asarray(values_b, dtype=np.float64)
    if len(a) < 2 or len(b) < 2:
        raise ValueError("the test over seeds needs at least 2 seed runs a side")
    delta = float(a.mean() - b.mean())
    p, df, se, crit = _welch(a, b)
    pooled = math.sqrt(((len(a) - 1) * a.var(ddof=1) + (len(b) - 1) * b.var(ddof=1)) / (len(a) + len(b) - 2))
    g = None if pooled == 0 else delta / pooled * (1 - 3 / (4 * (len(a) + len(b)) - 9))
    result = SeedTest(len(a), len(b), float(a.mean()), float(b.mean()), delta, delta - crit * se, delta + crit * se,
                      1.0 if delta == 0 else p, g, detectable_difference(se, df))  # fmt: skip
    if items_a and items_b and statistic:
        result.n_items, result.statistic, result.samples = items_a[0].shape[0], statistic, samples
        result.items_p, result.items_ci_low, result.items_ci_high = _items_bootstrap(
            items_a, items_b, ITEM_STATISTICS[statistic].score, samples, seed
        )
        if delta == 0:
            result.items_p = 1.0
    return result


def _items_bootstrap(items_a: list[np.ndarray], items_b: list[np.ndarray], score: Callable, samples: int,
                     seed: int) -> tuple[float, float, float]:  # fmt: skip
    """Two-level bootstrap (seeds × items) of the difference of mean corpus scores: ``(p, low, high)``."""
    n = items_a[0].shape[0]
    if any(s.shape[0] != n for s in items_a + items_b):
        raise ValueError("the runs were not scored on the same test set")
    rng = np.random.default_rng(seed)
    weights = rng.multinomial(n, np.full(n, 1.0 / n), size=samples).astype(np.float64)  # (B, n): the same items
    scores = {side: np.stack([score(weights @ s.astype(np.float64)) for s in runs], axis=1)  # (B, runs)
              for side, runs in (("a", items_a), ("b", items_b))}  # fmt: skip
    pick_a = rng.integers(0, len(items_a), size=(samples, len(items_a)))
    pick_b = rng.integers(0, len(items_b), size=(samples, len(items_b)))
    rows = np.arange(samples)[:, None]
    replicates = scores["a"][rows, pick_a].mean(1) - scores["b"][rows, pick_b].mean(1)
    full_a = np.mean([score(s.sum(0)) for s in items_a])
    full_b = np.mean([score(s.sum(0)) for s in items_b])
    observed = float(full_a - full_b)
    low, high = (float(v) for v in np.percentile(replicates, [2.5, 97.5]))
    identical = len(items_a) == len(items_b) and all(np.array_equal(x, y) for x, y in zip(items_a, items_b))
    return (1.0 if identical else _p_two_sided(replicates, observed)), low, high


def _p_two_sided(replicates: np.ndarray, observed: float) -> float:
    """Two-sided bootstrap p-value of ``observed`` against replicates shifted to mean zero."""
    if observed == 0.0:
        return 1.0  # a tie is never a difference
    centred = replicates - replicates.mean()
    exceed = int(np.sum(np.abs(centred) >= abs(observed)))
    return (exceed + 1) / (len(replicates) + 1)


def best_run_test(items_a: np.ndarray, items_b: np.ndarray, statistic: str, samples: int = BOOTSTRAP_SAMPLES,
                  seed: int = 0) -> float:  # fmt: skip
    """Paired bootstrap p-value of run a against run b over the shared test items (Koehn's test, as sacreBLEU
    runs it), on the metric ``statistic`` names; 1 for a tie."""
    score = ITEM_STATISTICS[statistic].score
    observed = float(score(items_a.sum(0)) - score(items_b.sum(0)))
    if observed == 0.0 or np.array_equal(items_a, items_b):
        return 1.0
    n = items_a.shape[0]
    weights = np.random.default_rng(seed).multinomial(n, np.full(n, 1.0 / n), size=samples).astype(np.float64)
    replicates = score(weights @ items_a.astype(np.float64)) - score(weights @ items_b.astype(np.float64))
    return _p_two_sided(replicates, observed)


def welch_p(a: list[float], b: list[float]) -> float | None:
    """Welch's two-sided t-test p-value of two samples (``None`` with fewer than 2 values a side)."""
    from scipy import stats

    a, b = [v for v in a if math.isfinite(v)], [v for v in b if math.isfinite(v)]
    if len(a) < 2 or len(b) < 2:
        return None
    if np.std(a) == 0 and np.std(b) == 0:
        return 1.0 if np.mean(a) == np.mean(b) else 0.0
    with warnings.catch_warnings():  # one side with (nearly) no spread: the test is still defined
        warnings.simplefilter("ignore", RuntimeWarning)
        return float(stats.ttest_ind(a, b, equal_var=False).pvalue)


def variance_ratio_p(a: list[float], b: list[float]) -> float | None:
    """Two-sided F-test p-value that the variances of two samples differ (``None`` with < 2 values a side)."""
    from scipy import stats

    if len(a) < 2 or len(b) < 2:
        return None
    va, vb = float(np.var(a, ddof=1)), float(np.var(b, ddof=1))
    if va == vb:
        return 1.0
    if va == 0 or vb == 0:
        return None  # one side has no spread at all: a ratio is not a finding either way
    f = va / vb
    one_sided = stats.f.sf(f, len(a) - 1, len(b) - 1) if f > 1 else stats.f.cdf(f, len(a) - 1, len(b) - 1)
    return float(min(1.0, 2 * one_sided))
