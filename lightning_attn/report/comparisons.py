"""Which pairs of mechanisms are tested, on which data, and what the family of tests concludes: every pair of
rows of a task gets the seed-level test (:func:`.significance.seed_test`, with the bootstrap over test items
where both sides logged comparable per-item statistics, and the test of equivalence within the task's margin);
then all of a task's pairs are one family (:func:`.significance.step_down`), and each pair's outcome — *better*,
*equivalent* within ±margin, or *undecided* — holds at α for the family as a whole. Where a test cannot run,
the pair says why. The statistics themselves are :mod:`.significance`'s.
"""

from __future__ import annotations

import itertools
from dataclasses import asdict, dataclass, field

import numpy as np

from ..tracking import tags as T
from . import significance as sig
from . import wording
from .aggregate import Row, by_task
from .kinds import PairOutcome

Predictions = dict[str, tuple[list[str], list[list[str]]]]  # run id -> (hypotheses, references)
BETTER, EQUIVALENT, UNDECIDED = PairOutcome.BETTER, PairOutcome.EQUIVALENT, PairOutcome.UNDECIDED


EARLY_SHARE = 0.02  # of α, for each look before the last: enough for a clear difference, most kept for the last
FUTILE_BELOW = 0.2  # a pair the last look would decide with less chance than this gets no more seeds (an estimate)


@dataclass(frozen=True)
class Looks:
    """A comparison that ran seeds until its pairs were decided (``compare --until-decided``) looked at its pairs
    at ``first`` seed runs a side, then after every further seed up to ``most``. Each look spends a share of α
    fixed in advance (:meth:`share`: a little at every look before the last, the rest at the last), and the shares
    add up to 1 — Bonferroni over the looks — so the family's error stays at α over all of them. The runs record
    the design (``first:most``) so that the report takes the same looks."""

    first: int
    most: int

    @property
    def count(self) -> int:
        return self.most - self.first + 1

    def share(self, seeds: int) -> float:
        """The share of α the look at ``seeds`` seed runs a side spends."""
        early = min(EARLY_SHARE, 0.5 / max(1, self.count - 1))
        return 1.0 - early * (self.count - 1) if seeds >= self.most else early

    def __str__(self) -> str:
        return f"{self.first}:{self.most}"

    @classmethod
    def parse(cls, text: str) -> Looks:
        first, _, most = text.partition(":")
        return cls(int(first), int(most))


def looks_of(rows: list[Row]) -> Looks | None:
    """The looks the runs of ``rows`` were taken with (None: a fixed number of seeds, one look); of runs that record
    different designs, the one with the most looks (the smallest share of α each)."""
    found = {Looks.parse(r.tags[T.LOOKS]) for row in rows for r in row.compared if T.LOOKS in r.tags}
    return max(found, key=lambda looks: (looks.count, looks.most)) if found else None


def _by_seed(row: Row) -> list[int]:
    """The positions of ``row``'s compared runs in seed order: a look at n seeds takes the first n."""

    def seed(i: int) -> tuple[int, str]:
        text = row.compared[i].tags.get(T.SEED, "")
        return (int(text) if text.lstrip("-").isdigit() else 0, text)

    return sorted(range(len(row.compared)), key=seed)


@dataclass
class PairTest:
    """Mechanism ``a`` against ``b`` (``a`` the more accurate by mean)."""

    task: str
    a: str
    b: str
    metric: str
    a_mean: float
    b_mean: float
    seed: sig.SeedTest | None = None
    seed_note: str = ""  # why the seed-level test was not run, or ran over seeds only
    p_adjusted: float | None = None  # the difference's p, adjusted for the family (all pairs of the task)
    equivalence_p_adjusted: float | None = None  # equivalence within the margin, adjusted likewise (None: no margin)
    family: int = 0  # pairs in the family the adjustment is over
    seeds_needed: int | None = None  # undecided: the seed runs a side that would decide it (an estimate)
    # undecided, looked at until decided: even the last look would decide it with less than FUTILE_BELOW chance
    hopeless: bool = False
    # what the family's adjustment weighs: the p-values themselves, or, over several looks, the smallest of each
    # look's p over that look's share of α
    evidence: float | None = None
    equivalence_evidence: float | None = None
    looked: list[int] = field(default_factory=list)  # the seed runs a side at each look taken (several looks)

    @property
    def p_value(self) -> float | None:
        """The seed-level test's p, unadjusted (None: not tested)."""
        return None if self.seed is None else self.seed.p_value

    @property
    def outcome(self) -> str | None:
        """``better`` (``a`` is), ``equivalent`` within the margin, or ``undecided``, for the family at α; None: not
        tested."""
        if self.seed is None or self.p_adjusted is None:
            return None
        if self.seed.delta != 0 and self.p_adjusted < sig.ALPHA:
            return BETTER
        if self.equivalence_p_adjusted is not None and self.equivalence_p_adjusted < sig.ALPHA:
            return EQUIVALENT
        return UNDECIDED

    @property
    def significant(self) -> bool | None:
        """Whether the family found the difference (None: not tested)."""
        return None if self.outcome is None else self.outcome == BETTER

    def involves(self, x: str, y: str) -> bool:
        """Whether this is the pair of ``x`` and ``y``, in either order."""
        return {self.a, self.b} == {x, y}

    def as_dict(self) -> dict:
        """The fields, the seed-level test's with its name, and its p and outcome: the JSON's entry."""
        data = asdict(self)
        data["seed"] = None if self.seed is None else asdict(self.seed) | {"test": self.seed.name}
        return data | {
            "p_value": self.p_value,
            "outcome": self.outcome,
            "significant": self.significant,
            "correction": wording.correction(self.family),
        }


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


def parse_margin(text: str) -> tuple[str, float]:
    """``VALUE`` (every task's headline metric) or ``METRIC=VALUE`` -> ``(metric or "", value)``; ValueError (one
    line) unless the value is a positive number."""
    metric, _, value = text.rpartition("=")
    try:
        margin = float(value)
    except ValueError:
        margin = -1.0
    if not margin > 0:
        raise ValueError(f"--margin {text!r}: write a positive number, or METRIC=NUMBER (e.g. test/bleu=0.5)")
    return metric.strip(), margin


def margins(rows: list[Row], asked: dict[str, float] | None = None) -> dict[str, float]:
    """The margin of practical equivalence of each row's metric: ``asked`` (by metric; ``""``: any metric), else
    the one its runs recorded (their task's, :data:`~lightning_attn.tracking.tags.EQUIVALENCE_MARGIN`) when they
    agree; a metric with neither has none (the report then claims no equivalence on it)."""
    asked = asked or {}
    out = {}
    for row in rows:
        if row.metric in asked or "" in asked:
            out[row.metric] = asked.get(row.metric, asked.get(""))
            continue
        recorded = {r.tags.get(T.EQUIVALENCE_MARGIN) for r in row.compared}
        if len(recorded) == 1 and None not in recorded and row.metric not in out:
            out[row.metric] = float(next(iter(recorded)))
    return out


def pair_tests(
    rows: list[Row],
    preds: Predictions,
    samples: int = sig.BOOTSTRAP_SAMPLES,
    *,
    margins: dict[str, float] | None = None,
    looks: Looks | None = None,
    estimates: bool = True,
) -> list[PairTest]:
    """Every pair of rows of a task, the more accurate by mean first: the seed-level test on the metric the
    table shows (with the bootstrap over test items where both sides have per-item statistics of it, ``samples``
    replicates), equivalence within ``margins[metric]`` where a margin is given; with ``looks`` (default: what
    the runs recorded, :func:`looks_of`), the same at every look the runs allowed; then each task's pairs
    adjusted as one family (:func:`adjust`). ``preds``: run id -> hypotheses, references. ``estimates``: also the
    power of each test and the seeds an undecided pair would need (what a report shows; a look needs neither)."""
    items = {(row.task, row.mechanism): row_items(row, preds) for row in rows}
    return tests_of_pairs(rows, items, samples, margins=margins, looks=looks, estimates=estimates)


def tests_of_pairs(
    rows: list[Row],
    items: dict[tuple[str, str], RowItems],
    samples: int = sig.BOOTSTRAP_SAMPLES,
    *,
    margins: dict[str, float] | None = None,
    looks: Looks | None = None,
    estimates: bool = True,
) -> list[PairTest]:
    """:func:`pair_tests` with each row's per-item statistics given (``items``, by task and mechanism) rather than
    read from predictions — how a simulation hands in what it made."""
    out = []
    for task, group in by_task(rows).items():
        ranked = sorted(group, key=lambda r: (-r.mean, r.mechanism))
        scored: dict = {}  # each run's bootstrap scores, computed once for all its pairs
        design = looks or looks_of(group)
        tests = [
            _pair_test(
                task,
                a,
                b,
                items_a=items[task, a.mechanism],
                items_b=items[task, b.mechanism],
                samples=samples,
                margin=(margins or {}).get(a.metric),
                scored=scored,
                looks=design,
                estimates=estimates,
            )
            for a, b in itertools.combinations(ranked, 2)
        ]
        adjust(tests, estimates, design)
        out += tests
    return out


def adjust(tests: list[PairTest], estimates: bool = True, looks: Looks | None = None) -> None:
    """Adjust one task's ``tests`` as a family (:func:`.significance.step_down`): every tested pair's difference
    and, where it has a margin, its equivalence; an undecided pair also gets the seed runs a side that would
    decide it (:func:`.significance.seeds_to_decide`, at the family's Bonferroni level, over pairs and ``looks``)."""
    tested = [t for t in tests if t.seed is not None]
    hypotheses = [(i, t.evidence) for i, t in enumerate(tested)]
    hypotheses += [(i, t.equivalence_evidence) for i, t in enumerate(tested) if t.equivalence_evidence is not None]
    adjusted = sig.step_down(hypotheses)
    for (i, _), p in zip(hypotheses, adjusted):
        test = tested[i]
        if test.p_adjusted is None:
            test.p_adjusted = p
        else:
            test.equivalence_p_adjusted = p
    for test in tested:
        test.family = len(tested)
        level = sig.ALPHA / len(tested) * (looks.share(looks.most) if looks else 1.0)  # Bonferroni, the last look
        if estimates and len(tested) > 1 and test.seed.detectable is not None:  # the power the family leaves it
            test.seed.detectable = sig.detectable_difference(test.seed.se, test.seed.df, level=level)
        if estimates and test.outcome == UNDECIDED:
            test.seeds_needed = sig.seeds_to_decide(test.seed, level)
            if looks is not None:
                chance = sig.seeds_to_decide(test.seed, level, power=FUTILE_BELOW, most=looks.most)
                test.hopeless = chance is not None and chance > looks.most


def _pair_test(
    task: str,
    a: Row,
    b: Row,
    *,
    items_a: RowItems,
    items_b: RowItems,
    samples: int,
    margin: float | None,
    scored: dict,
    looks: Looks | None,
    estimates: bool,
) -> PairTest:
    """The seed-level test of ``a`` against ``b`` (see :func:`pair_tests`) and its evidence, not yet adjusted."""
    test = PairTest(task, a.mechanism, b.mechanism, a.metric, a.mean, b.mean)
    comparable = not (items_a.missing or items_b.missing) and items_a.references == items_b.references
    comparable = comparable and items_a.name == items_b.name
    why = items_a.missing or items_b.missing or ("" if comparable else wording.DIFFERENT_TEST_SETS)
    values_a, values_b = [r.accuracy for r in a.compared], [r.accuracy for r in b.compared]
    if a.metric != b.metric:
        test.seed_note = wording.different_metrics(a.metric, b.metric)
    elif min(len(values_a), len(values_b)) < 2:
        test.seed_note = wording.TOO_FEW_SEEDS_TO_TEST
    else:

        def tested(first: int | None = None) -> sig.SeedTest:  # on every run, or on the first runs by seed
            pick_a, pick_b = (
                (_by_seed(a)[:first], _by_seed(b)[:first]) if first else (range(len(values_a)), range(len(values_b)))
            )
            return sig.seed_test(
                [values_a[i] for i in pick_a],
                [values_b[i] for i in pick_b],
                [items_a.runs[i] for i in pick_a] if comparable else None,
                items_b=[items_b.runs[i] for i in pick_b] if comparable else None,
                statistic=items_a.name if comparable else "",
                samples=samples,
                margin=margin,
                scored=scored,
                power=estimates and first is None,
            )

        test.seed = tested()
        test.evidence, test.equivalence_evidence = test.seed.p_value, test.seed.equivalence_p
        if looks is not None:
            test.looked = list(range(looks.first, min(looks.most, len(values_a), len(values_b)) + 1))
            at = {n: tested(n) for n in test.looked} or {looks.first: test.seed}
            test.evidence = min(1.0, min(t.p_value / looks.share(n) for n, t in at.items()))
            if margin is not None:
                test.equivalence_evidence = min(1.0, min(t.equivalence_p / looks.share(n) for n, t in at.items()))
        if why:
            test.seed_note = wording.over_seeds_only(why)
    return test


def undecided_against(tests: list[PairTest], mechanism: str) -> list[str]:
    """The mechanisms ``mechanism``'s pair with is still undecided (or untested) among ``tests``: while there are
    any, a comparison run until decided gives it another seed."""
    return [
        t.b if t.a == mechanism else t.a for t in tests if mechanism in (t.a, t.b) and t.outcome in (None, UNDECIDED)
    ]


def worth_more_seeds(tests: list[PairTest], mechanism: str, among: set[str]) -> list[str]:
    """Of the mechanisms ``among`` (those still given seeds) that ``mechanism``'s pair with is undecided, those that
    more seeds may decide: all but the :attr:`PairTest.hopeless` ones (an estimate: stopping early never adds a
    false claim)."""
    undecided = [t for t in tests if mechanism in (t.a, t.b) and t.outcome in (None, UNDECIDED)]
    return [
        t.b if t.a == mechanism else t.a
        for t in undecided
        if (t.b if t.a == mechanism else t.a) in among and not t.hopeless
    ]


def find_test(tests: list[PairTest], task: str, x: str, y: str) -> PairTest | None:
    """The test of ``x`` and ``y`` (either order) in ``task``, if any."""
    return next((t for t in tests if t.task == task and t.involves(x, y)), None)


def difference(test: PairTest, x: str) -> float:
    """The seed-level difference of the metric as seen from ``x`` (positive: ``x`` is better); the test must
    have run (``test.seed``)."""
    assert test.seed is not None
    return test.seed.delta if test.a == x else -test.seed.delta
