"""The verdict policy: what a report claims about each mechanism against a reference, and which mechanism (if
any) it names the most accurate — decided from the numbers, returned as structured results with their
sentences (:mod:`.wording`).

Every claim is **withheld**, with its reasons (:class:`.diagnostics.Blocker`), whenever what it would compare
is not comparable: runs not converged or unrecorded, too few seeds, unequal tuning budgets, both sides at the
floor, or no seed-level test. Speed is claimed only as the speed pass found it (:mod:`.speed`), never from the
figures runs measured while training. A large difference in seed spread is stated as observed, never as a finding:
a test of it would be a claim outside the family whose error rate the report controls.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field

from . import wording
from .aggregate import MIN_SEEDS, Row, by_task
from .comparisons import BETTER, PairTest, find_test
from .diagnostics import Blocker, Diagnosis, budget_blockers, not_comparable
from .kinds import BlockerKind, PairOutcome
from .speed import SpeedPass

COMPUTE_RATIO_NOTE = 2.0  # mention compute budgets that differ by more than this factor
SPREAD_RATIO_NOTE = 2.0  # mention seed spreads (standard deviations over seeds) that differ by this factor or more


@dataclass(frozen=True)
class Fact:
    """A per-seed figure of a mechanism against the reference (:func:`.wording.fact` reads ``kind``,
    ``value`` and ``reference`` the same way; ``interval`` is for the JSON and the speed pass table)."""

    kind: str  # greedy | beam | train (the speed pass) | seed spread | failed runs | compute
    value: float | None  # speed-up (None: the same speed) | spread ratio | failed share | compute ratio
    reference: float | None = None  # failed runs: the reference's share
    interval: tuple[float, float] | None = None  # speed: the time ratio's interval (for the whole speed pass)

    @property
    def text(self) -> str:
        """The fact in words (:func:`.wording.fact`)."""
        return wording.fact(self.kind, self.value, reference=self.reference)


@dataclass
class PairVerdict:
    """A mechanism against the reference: the claim (``text``) and, when withheld, why (``withheld``)."""

    mechanism: str
    reference: str
    text: str  # the comparison as it would read; shown only when nothing is withheld
    withheld: str = ""  # why no verdict is given (:func:`.wording.explain` of ``blockers``); empty: stated
    outcome: str = ""  # better | worse | equivalent | undecided (for the family); empty: no seed-level test
    blockers: list[Blocker] = field(default_factory=list)
    facts: list[Fact] = field(default_factory=list)

    @property
    def line(self) -> str:
        """The verdict as the report lists it: the claim, or ``inconclusive:`` and why."""
        return wording.inconclusive(self.mechanism, self.reference, self.withheld) if self.withheld else self.text

    def as_dict(self) -> dict:
        """The JSON's entry: the claim and why it is withheld."""
        return {"mechanism": self.mechanism, "reference": self.reference, "text": self.text, "withheld": self.withheld}


@dataclass
class TaskVerdict:
    """A task's verdicts: the summary (who is most accurate, if the data says) and each pair's."""

    task: str
    reference: str
    summary: str
    pairs: list[PairVerdict]
    withheld: bool = False  # the summary names no winner because something was not comparable
    leader: str = ""  # the most accurate by mean
    tied: list[str] = field(default_factory=list)  # those the leader is not shown better than (equivalent or undecided)
    blockers: list[Blocker] = field(default_factory=list)  # why the summary is withheld

    @property
    def winner(self) -> str | None:
        """The leader, when the summary names it significantly above every other mechanism."""
        return None if self.withheld or self.tied else self.leader

    @property
    def lines(self) -> list[str]:
        """The summary, then each pair's line."""
        return [self.summary, *(p.line for p in self.pairs)]

    def as_dict(self) -> dict:
        """The JSON's entry: the summary, the pairs, whether withheld, and the lines as the report shows them."""
        return {
            "task": self.task,
            "reference": self.reference,
            "summary": self.summary,
            "pairs": [p.as_dict() for p in self.pairs],
            "withheld": self.withheld,
            "lines": self.lines,
        }


def choose_reference(group: list[Row], requested: str | None = None) -> Row:
    """The row every other is compared with: ``requested``, else ``soft`` when present (the usual baseline),
    else the most accurate non-control mechanism. Raises LookupError for a ``requested`` not in ``group``."""
    names = {r.mechanism: r for r in group}
    if requested:
        if requested not in names:
            raise LookupError(f"reference mechanism {requested!r} is not in the report; mechanisms: {', '.join(names)}")
        return names[requested]
    if "soft" in names:
        return names["soft"]
    candidates = [r for r in group if not r.control] or group
    return max(candidates, key=lambda r: (r.mean, r.mechanism))


def facts(x: Row, ref: Row, min_seeds: int = MIN_SEEDS, speed: SpeedPass | None = None) -> list[Fact]:
    """What ``x`` is against ``ref`` beside accuracy: its speed at each kind of work the ``speed`` pass timed
    (faster or slower only where the pass shows it; none without a pass), its seed spread against the reference's
    where one is :data:`SPREAD_RATIO_NOTE` times the other (from at least 3 runs a side; observed, not tested),
    failed runs, and compute budgets that differ by over :data:`COMPUTE_RATIO_NOTE`."""
    out = []
    for kind in speed.kinds() if speed is not None else []:
        found = speed.compared(kind, x.mechanism, ref.mechanism)
        if found is not None:
            value = None if found.verdict == "same" else 1 / found.ratio
            out.append(Fact(kind, value, interval=(found.low, found.high)))
    xs, rs = [r.accuracy for r in x.compared], [r.accuracy for r in ref.compared]
    # a spread from two values is one difference: not worth a mention, whatever min_seeds says
    if min(len(xs), len(rs)) >= max(3, min_seeds) and statistics.stdev(xs) and statistics.stdev(rs):
        ratio = statistics.stdev(xs) / statistics.stdev(rs)
        if max(ratio, 1 / ratio) >= SPREAD_RATIO_NOTE:
            out.append(Fact("seed spread", ratio))
    if x.failed_rate or ref.failed_rate:
        out.append(Fact("failed runs", x.failed_rate, reference=ref.failed_rate))
    low, high = sorted((x.compute_s, ref.compute_s))
    if low and high / low > COMPUTE_RATIO_NOTE:
        out.append(Fact("compute", x.compute_s / ref.compute_s))
    return out


def verdicts(
    rows: list[Row],
    tests: list[PairTest],
    diagnoses: list[Diagnosis],
    *,
    reference: str | None = None,
    min_seeds: int = MIN_SEEDS,
    speed: dict[str, SpeedPass] | None = None,
) -> dict[str, TaskVerdict]:
    """Per task: every mechanism against the reference (``reference``, else :func:`choose_reference`'s), and
    the summary — from the seed-level ``tests`` and the ``diagnoses`` (one per row), speed facts from the task's
    ``speed`` pass, variance facts from ``min_seeds`` runs a side."""
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
                found.append(Blocker(BlockerKind.FLOOR, row.mechanism, against=(ref.mechanism,)))
            test = find_test(tests, task, row.mechanism, ref.mechanism)
            if test is None or test.seed is None:
                found.append(Blocker(BlockerKind.UNTESTABLE, row.mechanism, note=test.seed_note if test else ""))
            pairs.append(_pair(row, ref, test, blockers=found, min_seeds=min_seeds, speed=(speed or {}).get(task)))
        out[task] = _summary(task, group, ref, pairs=pairs, tests=tests, blockers=blockers)
    return out


def _pair(
    row: Row, ref: Row, test: PairTest | None, *, blockers: list[Blocker], min_seeds: int, speed: SpeedPass | None
) -> PairVerdict:
    """``row`` against ``ref``: the outcome of the seed-level ``test`` as seen from ``row``, the facts, and
    withheld for ``blockers``."""
    unit = wording.unit_of(row.metric)
    claim = {
        "mechanism": row.mechanism,
        "reference": ref.mechanism,
        "difference": row.mean - ref.mean,
        "unit": unit,
        "seeds": row.seeds,
        "reference_seeds": ref.seeds,
    }
    verdict = PairVerdict(row.mechanism, ref.mechanism, "", wording.explain(blockers), blockers=blockers)
    if test is None or test.seed is None:
        verdict.text = wording.comparison(**claim)
        return verdict
    verdict.outcome = outcome_from(test, row.mechanism)
    verdict.facts = facts(row, ref, min_seeds, speed)
    verdict.text = wording.comparison(
        **claim,
        outcome=verdict.outcome,
        margin=test.seed.margin,
        facts=verdict.facts,
    )
    return verdict


def outcome_from(test: PairTest, x: str) -> str:
    """A tested pair's family outcome as seen from ``x``: better, worse, equivalent or undecided."""
    if test.outcome == BETTER:
        return PairOutcome.BETTER if test.a == x else PairOutcome.WORSE
    return test.outcome


def _summary(
    task: str,
    group: list[Row],
    ref: Row,
    *,
    pairs: list[PairVerdict],
    tests: list[PairTest],
    blockers: dict[str, list[Blocker]],
) -> TaskVerdict:
    """The task's summary: the leader by mean, named the most accurate only when the family shows it better
    than every other mechanism and nothing (``blockers``, budgets, an untestable pair) is in the way."""
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
        elif outcome_from(test, leader.mechanism) != PairOutcome.BETTER:
            tied.append((other.mechanism, test))
    if untested:
        found.append(Blocker(BlockerKind.UNTESTED, leader.mechanism, against=tuple(untested)))
    verdict = TaskVerdict(
        task, ref.mechanism, "", pairs, leader=leader.mechanism, tied=[m for m, _ in tied], blockers=found
    )
    if found:
        verdict.summary, verdict.withheld = wording.summary_withheld(wording.explain(found)), True
    elif tied:
        verdict.summary = wording.no_single_winner(
            leader.mechanism,
            leader.metric,
            leader.mean,
            leader.ci95,
            [(m, t.outcome) for m, t in tied],
        )
    else:
        verdict.summary = wording.most_accurate(leader.mechanism, leader.metric, leader.mean, leader.ci95, leader.seeds)
    return verdict
