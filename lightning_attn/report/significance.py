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
     the difference of the mean corpus scores, tested against zero with the replicates' standard error.
     Would other test sentences differ?

  The p-value is the larger of the two; ties are never significant. With a margin of practical equivalence
  it also tests **equivalence** — that the difference lies within ±margin — by two one-sided tests, over
  seeds (Welch) and over test items (the bootstrap's replicates), again the larger p of the two.
* :func:`step_down` — the report's family-wise correction: every pair's difference and equivalence
  hypotheses of a task tested together, Holm's step-down with Shaffer's count of the hypotheses that can be
  true at once (at most one of a pair's two), so that the chance of *any* false claim in the family stays at
  or below α.
* :func:`seeds_to_decide` — an estimate of the seed runs a side that would decide an undecided pair.
* :func:`welch_p` — whether two sets of per-seed figures differ in mean.
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
    se: float = 0.0  # standard error of delta over seeds (Welch)
    df: float = math.inf  # Welch's degrees of freedom
    margin: float | None = None  # of practical equivalence, in the metric's units (None: not tested)
    equivalence_p: float | None = None  # two one-sided tests that |delta| < margin (the larger p of both parts)

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
    """``(p, df, standard error, t critical)`` of Welch's test of mean(a) - mean(b) (scipy.special's distribution
    functions: a report runs thousands of these, and scipy.stats's add a hundred times their cost)."""
    from scipy import special

    va, vb = a.var(ddof=1) / len(a), b.var(ddof=1) / len(b)
    se = math.sqrt(va + vb)
    delta = float(a.mean() - b.mean())
    if se == 0:
        return (1.0 if delta == 0 else 0.0), math.inf, 0.0, float(special.ndtri(1 - ALPHA / 2))
    df = (va + vb) ** 2 / (va**2 / (len(a) - 1) + vb**2 / (len(b) - 1))
    p = float(2 * special.stdtr(df, -abs(delta) / se))
    return p, df, se, float(special.stdtrit(df, 1 - ALPHA / 2))


def detectable_difference(se: float, df: float, power: float = POWER, level: float = ALPHA) -> float | None:
    """The true difference Welch's test finds with probability ``power`` at ``level``, given its standard
    error and degrees of freedom (noncentral t); None when there is no spread to speak of."""
    from scipy import optimize, special

    if not se or not math.isfinite(df):
        return None
    crit = special.stdtrit(df, 1 - level / 2)

    def shortfall(nc: float) -> float:  # power at a true difference of nc standard errors, less the target
        wrong_side = float(special.nctdtr(df, nc, -crit))  # negligible, and NaN where the series fails
        return 1.0 - float(special.nctdtr(df, nc, crit)) + (wrong_side if math.isfinite(wrong_side) else 0.0) - power

    high = crit + 1.0
    while shortfall(high) < 0 and high < 1e3:  # far enough out that the power exceeds the target
        high *= 2
    return float(optimize.brentq(shortfall, 0.0, high, xtol=1e-4)) * se  # far finer than the 2 decimals shown


def seed_test(
    values_a: list[float],
    values_b: list[float],
    items_a: list[np.ndarray] | None = None,
    *,
    items_b: list[np.ndarray] | None = None,
    statistic: str = "",
    samples: int = BOOTSTRAP_SAMPLES,
    seed: int = 0,
    margin: float | None = None,
    scored: dict | None = None,
    power: bool = True,
) -> SeedTest:
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
        margin: of practical equivalence (> 0, the metric's units): also test that |delta| < margin.
        scored: a dict the caller keeps across the tests of one report: each run's bootstrap scores are computed
            once there (every test with the same ``samples`` and ``seed`` resamples the same items), not once per
            pair it is in.
        power: also work out the difference it would detect (``detectable``), which only a report shows.
    """
    a, b = np.asarray(values_a, dtype=np.float64), np.asarray(values_b, dtype=np.float64)
    if len(a) < 2 or len(b) < 2:
        raise ValueError("the test over seeds needs at least 2 seed runs a side")
    result = _over_seeds(a, b, power=power)
    if margin is not None:
        result.margin, result.equivalence_p = margin, _tost_welch(result.delta, result.se, result.df, margin)
    if items_a and items_b and statistic:
        _over_items(result, items_a, items_b, statistic=statistic, samples=samples, seed=seed, scored=scored)
    return result


def _over_seeds(a: np.ndarray, b: np.ndarray, *, power: bool) -> SeedTest:
    """The test's part over seeds: Welch's t-test, its interval, Hedges' g and (``power``) what it detects."""
    delta = float(a.mean() - b.mean())
    p, df, se, crit = _welch(a, b)
    pooled = math.sqrt(((len(a) - 1) * a.var(ddof=1) + (len(b) - 1) * b.var(ddof=1)) / (len(a) + len(b) - 2))
    g = None if pooled == 0 else delta / pooled * (1 - 3 / (4 * (len(a) + len(b)) - 9))
    return SeedTest(
        len(a),
        len(b),
        float(a.mean()),
        float(b.mean()),
        delta,
        delta - crit * se,
        delta + crit * se,
        1.0 if delta == 0 else p,
        g,
        detectable_difference(se, df) if power else None,
        se=se,
        df=df,
    )


def _over_items(
    result: SeedTest,
    items_a: list[np.ndarray],
    items_b: list[np.ndarray],
    *,
    statistic: str,
    samples: int,
    seed: int,
    scored: dict | None,
) -> None:
    """The test's part over test items (the two-level bootstrap), added to ``result``; with a margin, the larger
    of both parts' equivalence p."""
    result.n_items, result.statistic, result.samples = items_a[0].shape[0], statistic, samples
    replicates, observed = _items_bootstrap(
        items_a,
        items_b,
        ITEM_STATISTICS[statistic].score,
        samples=samples,
        seed=seed,
        scored=scored if scored is not None else {},
    )
    result.items_ci_low, result.items_ci_high = (float(v) for v in np.percentile(replicates, [2.5, 97.5]))
    identical = len(items_a) == len(items_b) and all(np.array_equal(x, y) for x, y in zip(items_a, items_b))
    result.items_p = 1.0 if identical or result.delta == 0 else _p_two_sided(replicates, observed)
    if result.margin is not None:
        result.equivalence_p = max(result.equivalence_p, _tost_normal(observed, replicates, result.margin))


def _tost_welch(delta: float, se: float, df: float, margin: float) -> float:
    """Two one-sided Welch tests that the true difference lies within ±``margin``: the larger of their p."""
    from scipy import special

    if margin <= 0:
        raise ValueError(f"a margin of equivalence must be positive, not {margin}")
    if se == 0:
        return 0.0 if abs(delta) < margin else 1.0
    lower = special.stdtr(df, -(delta + margin) / se)  # H0: delta <= -margin
    upper = special.stdtr(df, (delta - margin) / se)  # H0: delta >= +margin
    return float(max(lower, upper))


def _tost_normal(observed: float, replicates: np.ndarray, margin: float) -> float:
    """Two one-sided tests that the difference lies within ±``margin``, from the bootstrap's standard error."""
    from scipy import special

    spread = float(np.std(replicates, ddof=1))
    if spread == 0.0:
        return 0.0 if abs(observed) < margin else 1.0
    return float(max(special.ndtr(-(observed + margin) / spread), special.ndtr((observed - margin) / spread)))


def _items_bootstrap(
    items_a: list[np.ndarray], items_b: list[np.ndarray], score: Callable, *, samples: int, seed: int, scored: dict
) -> tuple[np.ndarray, float]:
    """Two-level bootstrap (seeds × items) of the difference of mean corpus scores: its replicates, and the
    observed difference. ``scored`` keeps each run's scores under the resampled items (see :func:`seed_test`)."""
    n = items_a[0].shape[0]
    if any(s.shape[0] != n for s in items_a + items_b):
        raise ValueError("the runs were not scored on the same test set")
    if (n, samples, seed) not in scored:  # the resampled items, and where the generator goes on from after them
        rng = np.random.default_rng(seed)
        weights = rng.multinomial(n, np.full(n, 1.0 / n), size=samples).astype(np.float64)  # (B, n): the same items
        scored[n, samples, seed] = weights, rng.bit_generator.state
    weights, state = scored[n, samples, seed]
    rng = np.random.default_rng(seed)
    rng.bit_generator.state = state

    def run_scores(run: np.ndarray) -> np.ndarray:  # (B,): the run's score on each resampled test set
        key = (id(run), samples, seed)
        if key not in scored:
            scored[key] = (run, score(weights @ run.astype(np.float64)))  # the run kept: its id stays its own
        return scored[key][1]

    scores = {
        side: np.stack([run_scores(s) for s in runs], axis=1)  # (B, runs)
        for side, runs in (("a", items_a), ("b", items_b))
    }
    pick_a = rng.integers(0, len(items_a), size=(samples, len(items_a)))
    pick_b = rng.integers(0, len(items_b), size=(samples, len(items_b)))
    rows = np.arange(samples)[:, None]
    replicates = scores["a"][rows, pick_a].mean(1) - scores["b"][rows, pick_b].mean(1)

    def full_score(run: np.ndarray) -> float:  # the run's score on the whole test set
        key = (id(run), "full")
        if key not in scored:
            scored[key] = (run, float(score(run.sum(0))))
        return scored[key][1]

    full_a = np.mean([full_score(s) for s in items_a])
    full_b = np.mean([full_score(s) for s in items_b])
    return replicates, float(full_a - full_b)


def _p_two_sided(replicates: np.ndarray, observed: float) -> float:
    """Two-sided p-value of ``observed`` against zero, from the bootstrap's standard error (a normal test: its p
    has no floor at ``1 / replicates``, which a family of many pairs would need to go below)."""
    from scipy import special

    if observed == 0.0:
        return 1.0  # a tie is never a difference
    spread = float(np.std(replicates, ddof=1))
    if spread == 0.0:
        return 0.0
    return float(2 * special.ndtr(-abs(observed) / spread))


def step_down(hypotheses: list[tuple[object, float]], alpha: float = ALPHA) -> list[float]:
    """Family-wise adjusted p-values of ``hypotheses`` — ``(pair, p)`` each, a pair's difference and equivalence
    hypotheses under the same ``pair`` key — by Holm's step-down with Shaffer's count: at each step the
    hypotheses not yet rejected are weighed by how many of them can be true at once, at most one per pair (a
    difference of zero and one beyond the margin exclude each other). A hypothesis is rejected when its adjusted
    p is below ``alpha``; the chance of rejecting any true one is then at most ``alpha``, whatever the others.
    ``p`` may be ``inf`` (a hypothesis that cannot be rejected)."""
    order = sorted(range(len(hypotheses)), key=lambda i: hypotheses[i][1])
    adjusted = [1.0] * len(hypotheses)
    running = 0.0
    for step, i in enumerate(order):
        could_be_true = len({hypotheses[j][0] for j in order[step:]})
        running = max(running, min(1.0, could_be_true * hypotheses[i][1]))
        adjusted[i] = running
    return adjusted


def seeds_to_decide(test: SeedTest, level: float, power: float = POWER, most: int = 100) -> int | None:
    """An estimate of the seed runs a side at which ``test``'s question would be decided — a difference found
    (where its observed difference is beyond the margin, or no margin is set) or equivalence shown — with
    probability ``power`` at ``level``, if the true difference and the seed spread are as observed; ``most + 1``
    when it would take more than ``most``; None when it cannot be estimated: no spread, or the test over seeds
    would already decide at these seeds (the test over items is what leaves it open, and more seeds narrow that
    too, by how much this does not estimate)."""
    from scipy import special

    spread = test.se / math.sqrt(1 / test.n_a + 1 / test.n_b)  # the seed standard deviation it implies
    if spread == 0 or not math.isfinite(spread):
        return None
    delta, margin = abs(test.delta), test.margin
    equivalence = margin is not None and delta < margin

    def found(n: int) -> float:
        se, df = spread * math.sqrt(2 / n), 2 * (n - 1)
        if equivalence:  # both one-sided tests at level: the distance to the nearer bound decides
            return float(special.nctdtr(df, (delta - margin) / se, -special.stdtrit(df, 1 - level)))
        return 1.0 - float(special.nctdtr(df, delta / se, special.stdtrit(df, 1 - level / 2)))

    now = max(test.n_a, test.n_b)
    if found(now) >= power:
        return None
    if found(most) < power:
        return most + 1
    low, high = now, most  # found(low) < power <= found(high): the power grows with n
    while high - low > 1:
        middle = (low + high) // 2
        low, high = (low, middle) if found(middle) >= power else (middle, high)
    return high


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
