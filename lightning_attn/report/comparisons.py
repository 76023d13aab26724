"""Which pairs of mechanisms are tested, on which data: every pair of rows of a task gets the seed-level test
the verdict rests on (:func:`.significance.seed_test`, with the bootstrap over test items where both sides
logged comparable per-item statistics) and best run against best run (:func:`.significance.best_run_test`);
where a test cannot run, the pair says why. The statistics themselves are :mod:`.significance`'s.
"""

from __future__ import annotations

import itertools
from dataclasses import asdict, dataclass

import numpy as np

from ..tracking import tags as T
from . import significance as sig
from . import wording
from .aggregate import Row, by_task

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
    seed_note: str = ""  # why the seed-level test was not run, or ran over seeds only
    best_p: float | None = None  # best run vs best run
    best_note: str = ""  # how best run and best run were compared, or why they were not

    @property
    def p_value(self) -> float | None:
        """The seed-level test's p (None: not tested)."""
        return None if self.seed is None else self.seed.p_value

    @property
    def significant(self) -> bool | None:
        """Whether the seed-level test found the difference (None: not tested)."""
        return None if self.seed is None else self.seed.significant

    def involves(self, x: str, y: str) -> bool:
        """Whether this is the pair of ``x`` and ``y``, in either order."""
        return {self.a, self.b} == {x, y}

    def as_dict(self) -> dict:
        """The fields, the seed-level test's with its name, and its p and outcome: the JSON's entry."""
        data = asdict(self)
        data["seed"] = None if self.seed is None else asdict(self.seed) | {"test": self.seed.name}
        return data | {"p_value": self.p_value, "significant": self.significant}


@dataclass
class RowItems:
    """Per compared run of a row, its per-item statistics of the row's metric over the shared test set — or,
    where there are none to compare, ``missing`` (why)."""

    runs: list[np.ndarray]
    references: list[list[str]] | None = None
    name: str = ""  # the key of :data:`.significance.ITEM_STATISTICS`
    missing: str = ""


def row_items(row: Row, preds: Predictions) -> RowItems:
    """The per-item statistics of ``row``'s compared runs, from their test ``preds``; none (with why) when the
    runs logged no predictions, name no statistics (or different ones), or were tested on different sets."""
    names = {r.tags.get(T.ITEM_STATISTICS) for r in row.compared}
    if len(names) != 1 or None in names or next(iter(names)) not in sig.ITEM_STATISTICS:
        return RowItems([], missing=wording.no_item_statistics(row.mechanism, row.metric))
    name = next(iter(names))
    runs = [r for r in row.compared if r.run_id in preds]
    if len(runs) < len(row.compared):
        return RowItems([], missing=wording.no_predictions(row.mechanism))
    references = preds[runs[0].run_id][1]
    if any(preds[r.run_id][1] != references for r in runs):
        return RowItems([], missing=wording.own_test_sets_differ(row.mechanism))
    items = sig.ITEM_STATISTICS[name].items
    return RowItems([items(preds[r.run_id][0], references) for r in runs], references, name)


def pair_tests(rows: list[Row], preds: Predictions, samples: int = sig.BOOTSTRAP_SAMPLES) -> list[PairTest]:
    """Every pair of rows of a task, the more accurate by mean first: the seed-level test on the metric the
    table shows (with the bootstrap over test items where both sides have per-item statistics of it), and best
    run vs best run where both best runs logged test predictions (``preds``: run id -> hypotheses, references);
    ``samples`` bootstrap replicates each."""
    out = []
    for task, group in by_task(rows).items():
        items = {row.mechanism: row_items(row, preds) for row in group}
        for a, b in itertools.combinations(sorted(group, key=lambda r: (-r.mean, r.mechanism)), 2):
            out.append(_pair_test(task, a, b, items[a.mechanism], items[b.mechanism], preds, samples))
    return out


def _pair_test(task: str, a: Row, b: Row, items_a: RowItems, items_b: RowItems, preds: Predictions,
               samples: int) -> PairTest:  # fmt: skip
    """The tests of ``a`` against ``b`` (see :func:`pair_tests`)."""
    test = PairTest(task, a.mechanism, b.mechanism, a.metric, a.mean, b.mean, a.best, b.best)
    comparable = not (items_a.missing or items_b.missing) and items_a.references == items_b.references
    comparable = comparable and items_a.name == items_b.name
    why = items_a.missing or items_b.missing or ("" if comparable else wording.DIFFERENT_TEST_SETS)
    values_a, values_b = [r.accuracy for r in a.compared], [r.accuracy for r in b.compared]
    if a.metric != b.metric:
        test.seed_note = test.best_note = wording.different_metrics(a.metric, b.metric)
    elif min(len(values_a), len(values_b)) < 2:
        test.seed_note = wording.TOO_FEW_SEEDS_TO_TEST
    else:
        test.seed = sig.seed_test(values_a, values_b, items_a.runs if comparable else None,
                                  items_b.runs if comparable else None, items_a.name if comparable else "",
                                  samples)  # fmt: skip
        if why:
            test.seed_note = wording.over_seeds_only(why)
    best_a, best_b = preds.get(a.best_run), preds.get(b.best_run)
    if not comparable or best_a is None or best_b is None or a.metric != b.metric:
        test.best_note = test.best_note or why or wording.NO_BEST_RUN_PREDICTIONS
    else:
        statistic = sig.ITEM_STATISTICS[items_a.name]
        test.best_p = sig.best_run_test(statistic.items(best_a[0], items_a.references),
                                        statistic.items(best_b[0], items_b.references), items_a.name,
                                        samples)  # fmt: skip
        test.best_note = wording.best_run_bootstrap(statistic.name)
    return test


def find_test(tests: list[PairTest], task: str, x: str, y: str) -> PairTest | None:
    """The test of ``x`` and ``y`` (either order) in ``task``, if any."""
    return next((t for t in tests if t.task == task and t.involves(x, y)), None)


def difference(test: PairTest, x: str) -> float:
    """The seed-level difference of the metric as seen from ``x`` (positive: ``x`` is better); the test must
    have run (``test.seed``)."""
    assert test.seed is not None
    return test.seed.delta if test.a == x else -test.seed.delta
