"""Diagnostics: what makes a mechanism's figures not comparable with another's — runs that stopped while still
improving (*not converged*) or recorded no outcome, *too few seeds*, *at the floor* (not significantly above
the control mechanism, when one is in the comparison), and tuning budgets that differ. Each as a
:class:`Diagnosis` per mechanism and as :class:`Blocker` records the verdicts and decisions withhold on.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from . import wording
from .aggregate import MIN_SEEDS, Row, by_task
from .comparisons import PairTest, difference, find_test
from .kinds import BlockerKind


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
    floor_note: str = ""  # the difference against the control, or why it was not tested
    curves: dict[str, list[float]] = field(default_factory=dict)  # the not-converged runs' learning curves

    @property
    def too_few_seeds(self) -> bool:
        """Fewer seed runs than a CI and a verdict need."""
        return self.seeds < self.min_seeds

    @property
    def flags(self) -> list[str]:
        """Each problem in words (:func:`.wording.flags`); empty: none."""
        return wording.flags(
            len(self.not_converged),
            len(self.unrecorded),
            self.compared_runs,
            seeds=self.seeds,
            min_seeds=self.min_seeds,
            at_floor=self.at_floor,
            floor=self.floor_note,
        )

    def as_dict(self) -> dict:
        """The fields, whether the seeds are too few, and the flags: the JSON's entry."""
        return asdict(self) | {"too_few_seeds": self.too_few_seeds, "flags": self.flags}


def diagnose(
    rows: list[Row], tests: list[PairTest], curves: dict[str, list[float]] | None = None, min_seeds: int = MIN_SEEDS
) -> list[Diagnosis]:
    """One diagnosis per row, in their order: its convergence, its seeds against ``min_seeds``, its budget, and
    whether it is at the floor by the seed-level test (``tests``) against its task's control mechanism.
    ``curves``: run id -> validation metric per epoch, kept as the evidence of the not-converged runs."""
    curves = curves or {}
    out = []
    for task, group in by_task(rows).items():
        control = next((r for r in group if r.control), None)
        for row in group:
            stuck = [r for r in row.compared if r.converged is False]
            d = Diagnosis(
                task,
                row.mechanism,
                row.seeds,
                min_seeds,
                [r.name for r in stuck],
                [r.name for r in row.compared if r.converged is None],
                len(row.compared),
                row.trials,
                row.compute_s,
                row.control,
                curves={r.name: curves[r.run_id] for r in stuck if r.run_id in curves},
            )
            if control is not None and row is not control:
                test = find_test(tests, task, row.mechanism, control.mechanism)
                if test is None or test.seed is None:
                    d.floor_note = wording.floor_untested(control.mechanism, test.seed_note if test else None)
                else:
                    gain = difference(test, row.mechanism)
                    d.at_floor = not (gain > 0 and test.significant)
                    d.floor_note = wording.floor_note(
                        gain, wording.unit_of(row.metric), control.mechanism, test.p_adjusted
                    )
            out.append(d)
    return out


def budget_warnings(rows: list[Row]) -> list[str]:
    """One warning per task whose mechanisms were tuned with different budgets (trials): not like with like."""
    warnings = []
    for task, group in by_task(rows).items():
        trials = {r.mechanism: r.trials for r in group}
        if len(set(trials.values())) > 1:
            warnings.append(wording.budgets_differ(task, trials))
    return warnings


@dataclass(frozen=True)
class Blocker:
    """One reason a comparison is not fair. ``kind`` groups it, ``mechanism`` says whose; the rest by kind:

    * ``not converged`` / ``unrecorded``: ``count`` of its ``total`` compared runs;
    * ``too few seeds``: ``count`` seed runs, ``total`` the seed runs a verdict needs;
    * ``unequal budgets``: ``count`` trials against ``total`` of ``against[0]``;
    * ``floor``: neither ``mechanism`` nor ``against[0]`` beats the control;
    * ``untestable``: the pair's seed-level test did not run: ``note`` why (empty: there is no pair);
    * ``untested``: ``mechanism`` could not be tested against ``against``.

    :func:`.wording.explain` puts them into words.
    """

    kind: BlockerKind
    mechanism: str
    count: int = 0
    total: int = 0
    against: tuple[str, ...] = ()
    note: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "kind", BlockerKind(self.kind))  # a misspelt kind fails here, where it is made


def not_comparable(row: Row, d: Diagnosis) -> list[Blocker]:
    """What keeps ``row`` (diagnosed ``d``) from any fair comparison: runs not converged or unrecorded, too few
    seeds."""
    out = []
    if d.not_converged:
        out.append(Blocker(BlockerKind.NOT_CONVERGED, row.mechanism, len(d.not_converged), d.compared_runs))
    if d.unrecorded:
        out.append(Blocker(BlockerKind.UNRECORDED, row.mechanism, len(d.unrecorded), d.compared_runs))
    if d.too_few_seeds:
        out.append(Blocker(BlockerKind.TOO_FEW_SEEDS, row.mechanism, row.seeds, d.min_seeds))
    return out


def budget_blockers(x: Row, ref: Row) -> list[Blocker]:
    """``x`` and ``ref`` tuned with different budgets (trials): one blocker, else none."""
    if x.trials != ref.trials:
        return [Blocker(BlockerKind.UNEQUAL_BUDGETS, x.mechanism, x.trials, ref.trials, (ref.mechanism,))]
    return []
