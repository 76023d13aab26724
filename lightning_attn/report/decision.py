"""The decision a report ends in: which mechanism to pick, and why — pure, no I/O.

With constraints (``speed_pass/greedy_ms<=0.5``, ``speed_pass/train_mib<=200``, or any metric the runs logged) and
an objective (default: the task's headline metric, higher is better):

1. **feasible**: the mechanisms that meet every constraint — a ``speed_pass/…`` figure as the speed pass measured
   it (:mod:`.speed`), any other by its mean over the seed runs — each stated with its 95 % interval, and called
   *borderline* when the interval crosses the limit;
2. **as good**: of those, the most accurate (by the objective) and the ones the report's family of tests shows
   *equivalent* to it within the margin (:mod:`.comparisons`); those it is shown *better* than are listed as
   less accurate, and those *undecided* with the seed runs that would decide them (an estimate);
3. **the pick**: of the as good, the cheapest in the first constraint's resource (the tie-break), with
   whether that saving is real (for a time: the speed pass shows it).

A control mechanism (``uniform``: no attention) is the floor the others are measured against, never the
pick. Without constraints there is no single answer to give: the decision names the mechanisms that no other
beats on both the objective (for the family) and decoding speed (the speed pass shows it faster; without a pass,
on the objective alone, and it says so), the most accurate among them and the fastest where the pass shows one
faster than each of the others, how to add a constraint, and each pair's outcome on accuracy (better, equivalent
within the margin, or undecided with the seeds that would decide it).

The decision is **withheld**, with the reasons, whenever the diagnostics say the runs are not comparable
(not converged, too few seeds, unequal budgets) — the same rule as the verdicts.
"""

from __future__ import annotations

import math
import re
import statistics
from dataclasses import asdict, dataclass, field

from scipy import stats

from . import significance as sig
from . import wording
from .aggregate import Row, by_task
from .comparisons import EQUIVALENT, PairTest, difference, find_test
from .diagnostics import Diagnosis, budget_blockers, not_comparable
from .speed import DECODING, SpeedPass
from .speed import PREFIX as SPEED_PREFIX
from .speed import split as split_speed_metric

_CONSTRAINT = re.compile(r"^\s*([\w./\-]+)\s*(<=|>=|<|>)\s*(-?[\d.]+(?:[eE][-+]?\d+)?)\s*$")


@dataclass(frozen=True)
class Constraint:
    """``metric op limit``, e.g. ``speed_pass/greedy_ms <= 0.5``."""

    metric: str
    op: str
    limit: float

    @classmethod
    def parse(cls, text: str) -> Constraint:
        """Raises ValueError (one line) unless ``text`` reads ``METRIC<=VALUE`` (or ``>=``, ``<``, ``>``)."""
        found = _CONSTRAINT.match(text)
        if not found:
            raise ValueError(f"--constraint {text!r}: write METRIC<=VALUE, e.g. speed/infer_latency_ms_p50_b1<=2")
        return cls(found[1], found[2], float(found[3]))

    @property
    def lower_is_better(self) -> bool:
        return self.op.startswith("<")

    def holds(self, value: float) -> bool:
        return {"<=": value <= self.limit, ">=": value >= self.limit, "<": value < self.limit, ">": value > self.limit}[
            self.op
        ]

    def __str__(self) -> str:
        return f"{self.metric} {self.op} {self.limit:g}"


@dataclass(frozen=True)
class Objective:
    """What the pick maximises (or minimises) among the feasible mechanisms; default: the headline metric."""

    metric: str | None = None  # None: each task's headline metric
    maximize: bool = True

    @classmethod
    def parse(cls, text: str | None) -> Objective:
        """``METRIC``, ``METRIC:max`` or ``METRIC:min``; None: the headline metric, higher is better."""
        if not text:
            return cls()
        metric, _, direction = text.partition(":")
        if direction not in ("", "max", "min"):
            raise ValueError(f"--objective {text!r}: write METRIC, METRIC:max or METRIC:min")
        return cls(metric.strip(), direction != "min")


@dataclass
class Interval:
    """A mean over seed runs and its 95 % interval."""

    mean: float
    low: float | None  # 95 % interval of the mean over the seed runs (None from fewer than 2)
    high: float | None
    n: int

    def __str__(self) -> str:
        return wording.interval(self.mean, self.low, self.high, self.n)


def interval(values: list[float]) -> Interval | None:
    """The mean of the finite ``values`` and its t interval (None: no finite value)."""
    values = [v for v in values if math.isfinite(v)]
    if not values:
        return None
    mean = statistics.fmean(values)
    if len(values) < 2:
        return Interval(mean, None, None, 1)
    half = float(stats.t.ppf(0.975, len(values) - 1)) * statistics.stdev(values) / math.sqrt(len(values))
    return Interval(mean, mean - half, mean + half, len(values))


@dataclass
class Decision:
    """A task's decision: the paragraph the report opens with, and what it decided."""

    task: str
    text: str  # the paragraph the report opens with
    pick: str | None = None  # the mechanism to use (None: withheld, nothing feasible, or no constraint)
    candidates: list[str] = field(default_factory=list)  # feasible and tied (with constraints) or undominated
    feasible: list[str] = field(default_factory=list)
    excluded: dict[str, str] = field(default_factory=dict)  # mechanism -> the constraint it fails
    withheld: str = ""  # why no decision is made

    def as_dict(self) -> dict:
        """The fields: the JSON's entry."""
        return asdict(self)


def decide(
    rows: list[Row],
    tests: list[PairTest],
    diagnoses: list[Diagnosis],
    *,
    constraints: list[Constraint],
    objective: Objective | None = None,
    speed: dict[str, SpeedPass] | None = None,
) -> dict[str, Decision]:
    """One decision per task (see the module's docstring), from the rows, their seed-level ``tests`` and
    ``diagnoses``, under ``constraints`` and ``objective`` (default: the headline metric, higher is better), with
    each task's ``speed`` pass (the only source of "faster" and "cheapest")."""
    objective = objective or Objective()
    out = {}
    diag = {(d.task, d.mechanism): d for d in diagnoses}
    for task, group in by_task(rows).items():
        blockers = [b for r in group for b in not_comparable(r, diag[task, r.mechanism])]
        blockers += [b for r in group[1:] for b in budget_blockers(r, group[0])]
        candidates = [r for r in group if not r.control] or group  # the control is the floor, not a choice
        if blockers:
            why = wording.explain(blockers)
            out[task] = Decision(task, wording.decision_withheld(task, why), withheld=why)
        elif constraints:
            out[task] = _constrained(
                task, candidates, tests, constraints=constraints, objective=objective, speed=(speed or {}).get(task)
            )
        else:
            out[task] = _unconstrained(task, candidates, tests, objective, (speed or {}).get(task))
        controls = [r.mechanism for r in group if r.control and r not in candidates]
        if controls and not blockers:
            out[task].text += wording.controls_aside(controls)
    return out


def _objective_values(row: Row, objective: Objective) -> list[float]:
    """The objective's value of each compared run of ``row`` (that logged it)."""
    return [r.accuracy for r in row.compared] if objective.metric is None else row.values(objective.metric)


def _better(x: Row, y: Row, tests: list[PairTest], objective: Objective) -> tuple[bool, float | None]:
    """Whether ``x`` beats ``y`` on the objective for the family (all pairs of the task), and the adjusted p-value
    (None: not testable). On the headline metric that is the report's own family of tests; on another objective
    the same seed-level test, Bonferroni-adjusted over the task's pairs."""
    if objective.metric is None:
        test = find_test(tests, x.task, x.mechanism, y.mechanism)
        if test is None or test.seed is None:
            return False, None
        return bool(test.significant) and difference(test, x.mechanism) > 0, test.p_adjusted
    xs, ys = _objective_values(x, objective), _objective_values(y, objective)
    if min(len(xs), len(ys)) < 2:
        return False, None
    result = sig.seed_test(xs, ys)
    gain = result.delta if objective.maximize else -result.delta
    pairs = max(1, len([t for t in tests if t.task == x.task]))
    adjusted = min(1.0, result.p_value * pairs)
    return adjusted < sig.ALPHA and gain > 0, adjusted


def _equivalent(x: Row, y: Row, tests: list[PairTest], objective: Objective) -> bool:
    """Whether the family shows ``x`` and ``y`` equivalent within the margin on the headline metric (never on
    another objective: it has no margin)."""
    test = find_test(tests, x.task, x.mechanism, y.mechanism) if objective.metric is None else None
    return test is not None and test.outcome == EQUIVALENT


def _score(row: Row, objective: Objective) -> float:
    """The mean objective of ``row``, signed so that higher is better (-inf: none recorded)."""
    values = _objective_values(row, objective)
    mean = statistics.fmean(values) if values else -math.inf
    return mean if objective.maximize else -mean


def _name(objective: Objective, group: list[Row]) -> str:
    """The metric the objective is on."""
    return objective.metric or group[0].metric


def _measured(row: Row, metric: str, speed: SpeedPass | None) -> Interval | None:
    """``row``'s value of a constraint's ``metric`` and its 95 % interval: the speed pass's figure for a
    ``speed_pass/…`` metric, else the mean over its seed runs."""
    if metric.startswith(SPEED_PREFIX):
        timed = speed.figure(metric, row.mechanism) if speed is not None else None
        return None if timed is None else Interval(timed.value, timed.low, timed.high, timed.rounds)
    return interval(row.values(metric))


def _constrained(
    task: str,
    group: list[Row],
    tests: list[PairTest],
    *,
    constraints: list[Constraint],
    objective: Objective,
    speed: SpeedPass | None,
) -> Decision:
    """The pick under ``constraints``: the feasible, those tied with the most accurate, the cheapest of them in
    the first constraint's resource (see the module's docstring)."""
    feasible, excluded, borderline, shown = _feasible(group, constraints, speed)
    limits = " and ".join(str(c) for c in constraints)
    if not feasible:
        return Decision(task, wording.nothing_feasible(limits, task, excluded), excluded=excluded)
    metric = _name(objective, group)
    leader = max(feasible, key=lambda r: (_score(r, objective), r.mechanism))
    tied, beaten, undecided = _against_leader(leader, feasible, tests, task=task, objective=objective)
    resource = constraints[0]
    cost = {r.mechanism: shown[r.mechanism, resource.metric].mean for r in tied}
    pick = (min if resource.lower_is_better else max)(tied, key=lambda r: (cost[r.mechanism], r.mechanism))
    met = [(c.metric, str(shown[pick.mechanism, c.metric])) for c in constraints]
    others = [r for r in tied if r is not pick]
    saving, clear = _cost_difference(pick, others, resource, shown, speed) if others else ("", True)
    margin = next((t.seed.margin for t in tests if t.task == task and t.seed is not None), None)
    text = wording.pick(
        task=task,
        mechanism=pick.mechanism,
        limits=limits,
        met=met,
        feasible=len(feasible),
        metric=metric,
        score=_score(pick, objective),
        tied=[r.mechanism for r in others],
        resource=resource.metric,
        saving=saving,
        clear=clear,
        beaten=[(r.mechanism, p) for r, p in beaten],
        excluded=excluded,
        borderlines=borderline,
        undecided=undecided,
        margin=margin,
    )
    return Decision(task, text, pick.mechanism, [r.mechanism for r in tied], [r.mechanism for r in feasible], excluded)


def _feasible(
    group: list[Row], constraints: list[Constraint], speed: SpeedPass | None
) -> tuple[list[Row], dict[str, str], list[str], dict[tuple[str, str], Interval]]:
    """Which rows meet every constraint: ``(feasible, excluded: mechanism -> why, borderline notes, the figure
    shown for each (mechanism, metric))``. A constraint a row's mean meets but its interval crosses is borderline."""
    feasible, excluded, borderline, shown = [], {}, [], {}
    for row in group:
        failing = []
        for c in constraints:
            found = _measured(row, c.metric, speed)
            if found is None:
                failing.append(wording.constraint_unrecorded(c.metric))
                continue
            shown[row.mechanism, c.metric] = found
            if not c.holds(found.mean):
                failing.append(wording.constraint_fails(c.metric, str(found), c.op, c.limit))
            elif found.low is not None and not (c.holds(found.low) and c.holds(found.high)):
                borderline.append(wording.borderline(row.mechanism, c.metric, str(found)))
        if failing:
            excluded[row.mechanism] = "; ".join(failing)
        else:
            feasible.append(row)
    return feasible, excluded, borderline, shown


def _against_leader(
    leader: Row, feasible: list[Row], tests: list[PairTest], *, task: str, objective: Objective
) -> tuple[list[Row], list[tuple[Row, float]], list[tuple[str, int | None]]]:
    """The feasible rows by how they compare with the leader: ``(tied: the leader and those equivalent to it,
    beaten with the adjusted p, undecided with the seeds a side that would decide it where estimated)``."""
    tied, beaten, undecided = [leader], [], []
    for row in feasible:
        if row is not leader:
            wins, p = _better(leader, row, tests, objective)
            if wins:
                beaten.append((row, p))
            elif _equivalent(leader, row, tests, objective):
                tied.append(row)
            else:  # neither shown: with the seeds that would decide it, where the headline's test estimates them
                test = find_test(tests, task, leader.mechanism, row.mechanism) if objective.metric is None else None
                undecided.append((row.mechanism, test.seeds_needed if test is not None else None))
    return tied, beaten, undecided


def _cost_difference(
    pick: Row, others: list[Row], resource: Constraint, shown: dict[tuple[str, str], Interval], speed: SpeedPass | None
) -> tuple[str, bool]:
    """The pick's cost in ``resource`` against the next cheapest of ``others`` (:func:`.wording.cost_saving`), and
    whether that saving is real: for a time of the speed pass, where the pass shows the pick faster; for its
    tensor memory (counted, not sampled), where it is at least 5 % less; for a figure of the seed runs, where it is
    larger than the noise between seeds (Welch's test)."""
    sign = 1 if resource.lower_is_better else -1
    rival = min(others, key=lambda r: sign * shown[r.mechanism, resource.metric].mean)
    mine, theirs = shown[pick.mechanism, resource.metric].mean, shown[rival.mechanism, resource.metric].mean
    if resource.metric.startswith(SPEED_PREFIX):
        kind, unit = split_speed_metric(resource.metric)
        if unit == "ms":
            found = speed.compared(kind, pick.mechanism, rival.mechanism) if speed is not None else None
            clear = found is not None and found.verdict == ("faster" if resource.lower_is_better else "slower")
            said = f"speed pass: {found.words}" if found else "not compared by the speed pass"
        else:
            clear = sign * (theirs - mine) >= 0.05 * max(abs(mine), abs(theirs))
            said = "counted tensor memory" if clear else "counted tensor memory, within 5 %"
        return wording.cost_saving(mine, rival.mechanism, theirs, p=None, clear=clear, said=said), clear
    p = sig.welch_p(pick.values(resource.metric), rival.values(resource.metric))
    clear = p is not None and p < sig.ALPHA
    return wording.cost_saving(mine, rival.mechanism, theirs, p=p, clear=clear), clear


def _unconstrained(
    task: str, group: list[Row], tests: list[PairTest], objective: Objective, speed: SpeedPass | None
) -> Decision:
    """Without constraints: the mechanisms no other beats on both the objective (for the family) and the cost (the
    speed pass shows it faster at :data:`.speed.DECODING`; without a pass, accuracy alone); one pick only when that
    is a single mechanism."""
    metric, unit = _name(objective, group), wording.unit_of(_name(objective, group))
    undominated = []
    for row in group:
        dominated = False
        for other in group:
            if other is row:
                continue
            more_accurate, _ = _better(other, row, tests, objective)
            cheaper = speed is not None and speed.faster(DECODING, other.mechanism, row.mechanism)
            dominated |= more_accurate and (cheaper or speed is None)
        if not dominated:
            undominated.append(row)
    best = max(undominated, key=lambda r: (_score(r, objective), r.mechanism))
    names = [r.mechanism for r in undominated]
    fastest = speed.fastest(DECODING, names) if speed is not None and len(names) > 1 else None
    text = wording.undominated(
        task=task,
        names=names,
        metric=metric,
        best=best.mechanism,
        score=_score(best, objective),
        unit=unit,
        fastest=fastest,
        cost=f"{SPEED_PREFIX}{DECODING}_ms",
        timed=speed is not None,
    )
    text += wording.pair_outcomes(
        [(t.a, t.b, t.outcome, t.seed.margin, t.seeds_needed) for t in tests if t.task == task and t.seed is not None],
        unit,
    )
    pick = best.mechanism if len(undominated) == 1 else None
    return Decision(task, text, pick, names, [r.mechanism for r in group])
