"""Significance tests a report rests on (pure: texts and numbers in, results out; no I/O).

* :func:`seed_test` — the verdict's test: a **two-level bootstrap over seeds and test sentences**. Each
  mechanism's every seed run has translated (or captioned) the same test set. A bootstrap replicate
  resamples the test sentences (the same sentences for every run: the comparison stays paired) and,
  independently for each mechanism, its seed runs; the statistic is the difference of the two
  mechanisms' mean corpus BLEU over the drawn seeds. Both sources of variation a conclusion must
  survive — which seed, which sentences — are in the spread. The p-value is two-sided, from the
  replicates shifted to mean zero (the null hypothesis), with the usual ``(k + 1) / (B + 1)``.
* :func:`best_run_test` — the best run of each mechanism against the other's, sacrebleu's paired
  bootstrap (the second column of the report: one seed each).
* :func:`welch_p` and :func:`variance_ratio_p` — whether a ratio of per-seed figures (latency,
  throughput, seed variance) is larger than noise, before a report states it.

Ties are never significant: identical outputs, or equal scores, give ``p = 1`` (sacrebleu's bootstrap
alone returns its smallest p for two identical systems).

Corpus BLEU is the runs' own test metric (:mod:`lightning_attn.bleu`: sacreBLEU's defaults): each
sentence's sufficient statistics summed over a resample and scored — exactly sacreBLEU's corpus score of
those sentences — so a test never finds a difference between two runs whose logged scores are equal.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..bleu import SMOOTH, TOKENIZE, corpus_bleu

BOOTSTRAP_SAMPLES = 1000  # resamples per test (the report's --bootstrap-samples)


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
    n_sentences: int
    bleu_a: float  # mean corpus BLEU over a's seed runs
    bleu_b: float
    delta: float  # bleu_a - bleu_b
    ci_low: float  # 95 % bootstrap interval of delta
    ci_high: float
    p_value: float
    samples: int

    @property
    def significant(self) -> bool:
        return self.p_value < 0.05

    @property
    def name(self) -> str:
        return "two-level bootstrap over seeds and test sentences (sacreBLEU)"


def _p_two_sided(replicates: np.ndarray, observed: float) -> float:
    """Two-sided bootstrap p-value of ``observed`` against replicates shifted to mean zero."""
    if observed == 0.0:
        return 1.0  # a tie is never a difference
    centred = replicates - replicates.mean()
    exceed = int(np.sum(np.abs(centred) >= abs(observed)))
    return (exceed + 1) / (len(replicates) + 1)


def seed_test(
    stats_a: list[np.ndarray], stats_b: list[np.ndarray], samples: int = BOOTSTRAP_SAMPLES, seed: int = 0
) -> SeedTest:
    """Two-level bootstrap (seeds x sentences) of the difference in mean corpus BLEU, a minus b.

    Args:
        stats_a, stats_b: per seed run, :func:`sentence_statistics` over the shared test set (same sentences,
            same order).
        samples: bootstrap replicates.
        seed: the resampling seed (a report is reproducible).
    """
    if not stats_a or not stats_b:
        raise ValueError("each side needs at least one run")
    n = stats_a[0].shape[0]
    if any(s.shape[0] != n for s in stats_a + stats_b):
        raise ValueError("the runs were not scored on the same test set")
    rng = np.random.default_rng(seed)
    full_a = np.array([corpus_bleu(s.sum(0)) for s in stats_a])
    full_b = np.array([corpus_bleu(s.sum(0)) for s in stats_b])
    observed = float(full_a.mean() - full_b.mean())
    identical = len(stats_a) == len(stats_b) and all(np.array_equal(x, y) for x, y in zip(stats_a, stats_b))
    replicates = np.empty(samples)
    for b in range(samples):
        idx = rng.integers(0, n, size=n)  # the same sentences for every run: paired
        pick_a = rng.integers(0, len(stats_a), size=len(stats_a))
        pick_b = rng.integers(0, len(stats_b), size=len(stats_b))
        score_a = [corpus_bleu(stats_a[i][idx].sum(0)) for i in pick_a]
        score_b = [corpus_bleu(stats_b[i][idx].sum(0)) for i in pick_b]
        replicates[b] = np.mean(score_a) - np.mean(score_b)
    low, high = (float(v) for v in np.percentile(replicates, [2.5, 97.5]))
    p = 1.0 if identical else _p_two_sided(replicates, observed)
    return SeedTest(len(stats_a), len(stats_b), n, float(full_a.mean()), float(full_b.mean()), observed, low, high, p,
                    samples)  # fmt: skip


def best_run_test(
    hyp_a: list[str], hyp_b: list[str], references: list[list[str]], samples: int = BOOTSTRAP_SAMPLES
) -> float:
    """sacrebleu's paired bootstrap p-value of run a against run b on the same test set; 1 for a tie."""
    from sacrebleu.metrics import BLEU
    from sacrebleu.significance import PairedTest

    if hyp_a == hyp_b:
        return 1.0
    refs = references_by_position(references)
    bleu = BLEU(tokenize=TOKENIZE, smooth_method=SMOOTH)
    if bleu.corpus_score(hyp_a, refs).score == bleu.corpus_score(hyp_b, refs).score:
        return 1.0  # sacrebleu would give its smallest p: no resample differs by more than nothing
    test = PairedTest([("a", hyp_a), ("b", hyp_b)], {"BLEU": bleu}, refs, test_type="bs", n_samples=samples)
    _, results = test()
    return float(results["BLEU"][1].p_value)


def welch_p(a: list[float], b: list[float]) -> float | None:
    """Welch's two-sided t-test p-value of two samples (``None`` with fewer than 2 values a side)."""
    from scipy import stats

    a, b = [v for v in a if math.isfinite(v)], [v for v in b if math.isfinite(v)]
    if len(a) < 2 or len(b) < 2:
        return None
    if np.std(a) == 0 and np.std(b) == 0:
        return 1.0 if np.mean(a) == np.mean(b) else 0.0
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
