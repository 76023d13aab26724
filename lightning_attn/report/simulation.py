"""Comparisons with a known truth, simulated and judged by the report's own code: what its error rates are and
how many seed runs it spends — the evidence behind the report's guarantees (``tests/report/test_calibration.py``)
and the sequential mode's efficiency (``benchmarks/sequential_seeds.py``).

A simulated translation run scores one shared test set of :data:`ITEMS` sentences (each with a difficulty and a
length); its quality is its mechanism's plus a seed effect (:data:`SEED_SD`), and each sentence's n-gram matches
are drawn from it — sacreBLEU's sufficient statistics, what a translation run's predictions give the report. The
seed spread (about 1.3 BLEU) is like the demo's. :func:`compare` then runs the rows, every pair's test, the
family's adjustment and, until decided, the looks and the stopping rule of ``compare --until-decided``, through
:func:`.comparisons.tests_of_pairs` and :func:`.comparisons.worth_more_seeds`, as ``compare`` does.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..bleu import corpus_bleu_many
from ..tracking import tags as T
from . import comparisons
from .aggregate import Row, summarise
from .collect import Collected, RunRecord

ITEMS, SEED_SD = 200, 0.08


@dataclass
class Sentences:
    """The sentences every run of a simulated task is scored on."""

    difficulty: np.ndarray
    lengths: np.ndarray

    @classmethod
    def draw(cls, rng: np.random.Generator, items: int = ITEMS) -> Sentences:
        return cls(rng.normal(0, 1.0, items), rng.integers(8, 21, items))

    def run(self, rng: np.random.Generator, quality: float, seed_sd: float = SEED_SD) -> np.ndarray:
        """One seed run of a mechanism of ``quality``: its ``(items, 10)`` sacreBLEU statistics."""
        p = 1 / (1 + np.exp(-(quality + rng.normal(0, seed_sd) + self.difficulty)))
        totals = np.stack([np.maximum(self.lengths - n, 0) for n in range(4)], 1)
        correct = rng.binomial(totals, p[:, None] ** np.arange(1, 5))
        return np.column_stack([self.lengths, self.lengths, correct, totals])


@dataclass
class Compared:
    """A simulated comparison as its report ends: every pair's test and each mechanism's seed runs."""

    rows: list[Row]
    tests: list[comparisons.PairTest]
    runs: dict[str, int]  # mechanism -> seed runs trained
    looks: int  # looks taken (1 for a fixed number of seeds)


def compare(
    rng: np.random.Generator,
    qualities: dict[str, float],
    *,
    seeds: int = 3,
    most: int | None = None,
    margin: float | None = 1.0,
    samples: int = 200,
    items: bool = True,
) -> Compared:
    """Mechanisms of the given ``qualities`` (logit units; 2.0 scores about 50 BLEU), ``seeds`` runs each — or,
    with ``most``, as ``compare --until-decided --max-seeds most`` runs them: a look after ``seeds``, then one
    more seed for each mechanism with a pair undecided, until none is or each has ``most``. ``items``: the
    per-sentence statistics reach the test (else over seeds only); ``margin`` of equivalence (None: none)."""
    test_set = Sentences.draw(rng)
    planned = most or seeds
    drawn = {m: [test_set.run(rng, q) for _ in range(planned)] for m, q in qualities.items()}  # the seeds to come
    given, open_ = dict.fromkeys(qualities, seeds), list(qualities)
    looks = comparisons.Looks(seeds, most) if most else None
    taken = 0
    while True:
        taken += 1
        rows, tests = _judge(drawn, given, looks, margin=margin, samples=samples, items=items)
        open_ = [m for m in open_ if comparisons.worth_more_seeds(tests, m, set(open_))] if looks else []
        if not open_ or all(given[m] >= planned for m in open_):
            return Compared(rows, tests, given, taken)
        for m in open_:
            given[m] += 1


def _judge(
    drawn: dict[str, list[np.ndarray]],
    given: dict[str, int],
    looks: comparisons.Looks | None,
    *,
    margin: float | None,
    samples: int,
    items: bool,
) -> tuple[list[Row], list]:
    """The report's rows and family of tests of the first ``given`` runs of each mechanism."""
    collected = Collected(experiments=["simulated"])
    tags = {T.HEADLINE_METRIC: "test/bleu", T.TASK: "translation", T.ITEM_STATISTICS: "sacrebleu"}
    if looks:
        tags[T.LOOKS] = str(looks)
    for mechanism, runs in drawn.items():
        for seed, run in enumerate(runs[: given[mechanism]]):
            metrics = {
                "test/bleu": float(corpus_bleu_many(run.sum(0))),
                "run/converged": 1.0,
                "speed/infer_latency_ms_p50_b1": 1.0,
            }  # every mechanism as fast: accuracy alone differs
            collected.runs.append(
                RunRecord(
                    f"{mechanism}-{seed}",
                    f"{mechanism}-{seed}",
                    "simulated",
                    "translation",
                    mechanism,
                    "FINISHED",
                    "seed",
                    metrics,
                    {},
                    tags | {T.MECHANISM: mechanism, T.SEED: str(seed)},
                )
            )
    rows = summarise(collected)
    statistics = {
        (row.task, row.mechanism): comparisons.RowItems(
            drawn[row.mechanism][: given[row.mechanism]], references=[["shared"]], name="sacrebleu"
        )
        if items
        else comparisons.RowItems([], missing="simulated over seeds only")
        for row in rows
    }
    margins = {"test/bleu": margin} if margin is not None else {}
    return rows, comparisons.tests_of_pairs(rows, statistics, samples, margins=margins, looks=looks)
