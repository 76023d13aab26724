"""The report's English, in one place: every sentence it writes about runs, tests, diagnostics, verdicts and
decisions, and the notes beside its tables and plots.

Nothing here decides anything. The modules that decide (:mod:`.aggregate`, :mod:`.grouping`,
:mod:`.comparisons`, :mod:`.diagnostics`, :mod:`.verdict`, :mod:`.decision`) work out the facts — numbers,
names, outcomes — and call these functions for the words; each function takes those facts and returns text.
Labels (table headers, plot titles, axis names) stay with the layout that shows them (:mod:`.render`,
:mod:`.plots`), and error messages with the code that raises them.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Protocol

from .kinds import BlockerKind, PairOutcome

_UNITS = {"bleu": "BLEU", "bleu4": "BLEU-4", "cider": "CIDEr-D"}


def unit_of(metric: str) -> str:
    """How a difference in ``metric`` is written: ``test/bleu`` -> BLEU, ``test/bleu4`` -> BLEU-4; any other
    metric by its last path component."""
    name = metric.split("/")[-1]
    return _UNITS.get(name, name)


# ─── aggregation and pooling ───────────────────────────────────────────────────────────────────
NO_FAILURE_REASON = "no reason recorded"  # a failed run that logged no failure_reason


def no_ci(seeds: int) -> str:
    """The table's CI cell where ``seeds`` seed runs are too few for an interval: ``n = 2: no CI``."""
    return f"n = {seeds}: no CI"


def not_pooled(mechanism: str, differing: Sequence[str], variants: Sequence[tuple[str, int]]) -> str:
    """Runs of ``mechanism`` (``task / name``) whose configs differ in the keys ``differing``, compared as
    ``variants`` — (label, runs) each — rather than pooled as seeds."""
    listing = "; ".join(f"[{label}] {runs} run(s)" for label, runs in variants)
    return (
        f"{mechanism}: runs differ in {', '.join(differing)}, so they are not pooled: compared as "
        f"{len(variants)} variants ({listing})"
    )


def seed_repeated(mechanism: str, label: str, seeds: Sequence[str]) -> str:
    """``seeds`` of ``mechanism`` (variant ``label``, empty: the only one) ran more than once."""
    where = f" [{label}]" if label else ""
    return f"{mechanism}{where}: seed {', '.join(seeds)} ran more than once; the latest run counts"


# ─── pair tests: why a test was not run, or how ────────────────────────────────────────────────
TOO_FEW_SEEDS_TO_TEST = "the test over seeds needs at least 2 seed runs a side"
DIFFERENT_TEST_SETS = "the mechanisms were tested on different test sets"


def p_text(p: float) -> str:
    """A p-value as a table cell: ``0.012``, or ``< 0.001``."""
    return "< 0.001" if p < 0.001 else f"{p:.3f}"


def p_is(p: float) -> str:
    """A p-value after its name in a sentence: ``= 0.012``, or ``< 0.001``."""
    return "< 0.001" if p < 0.001 else f"= {p:.3f}"


def correction(pairs: int) -> str:
    """How a task's ``pairs`` were adjusted as one family."""
    return (
        f"Holm's step-down with Shaffer's count over the {pairs} pair(s) of the task, difference and "
        "equivalence tests together"
    )


def no_item_statistics(mechanism: str, metric: str) -> str:
    """The runs of ``mechanism`` name no per-item statistics (or several) of ``metric``."""
    return f"{mechanism}'s runs record no per-item statistics of {metric}"


def no_predictions(mechanism: str) -> str:
    """Some compared run of ``mechanism`` logged no test predictions."""
    return f"{mechanism} logged no test predictions"


def own_test_sets_differ(mechanism: str) -> str:
    """The compared runs of ``mechanism`` were tested on different test sets."""
    return f"{mechanism}'s runs were tested on different test sets"


def different_metrics(a: str, b: str) -> str:
    """Two rows headline different metrics ``a`` and ``b``: nothing to test."""
    return f"different metrics: {a} and {b}"


def over_seeds_only(why: str) -> str:
    """The seed-level test ran without its bootstrap over test items, because ``why``."""
    return f"over seeds only: {why}"


def outcome(kind: str, margin: float | None, unit: str, seeds_needed: int | None) -> str:
    """A pair's outcome for the family: ``better``, ``worse``, ``equivalent`` (within ±``margin`` ``unit``) or
    ``undecided`` (with ``seeds_needed`` a side that would decide it, an estimate)."""
    if kind == PairOutcome.EQUIVALENT:
        return f"equivalent within ±{margin:g} {unit}"
    if kind == PairOutcome.UNDECIDED:
        return f"undecided ({_seeds_needed(seeds_needed)})"
    return kind


def _seeds_needed(seeds: int | None) -> str:
    if seeds is None:  # no spread, or the test over items is what leaves it open
        return "no estimate of the seeds that would decide it"
    if seeds > 100:
        return "more than 100 seeds a side would be needed, an estimate"
    return f"about {seeds} seeds a side would decide it, an estimate"


#: more undecided pairs than this are counted in a decision, not listed (each is in the significance table)
LISTED_UNDECIDED = 3


def pair_outcomes(pairs: Sequence[tuple[str, str, str, float | None, int | None]], unit: str) -> str:
    """After a decision: the tested pairs' outcomes on accuracy — ``(a, b, outcome, margin, seeds needed)``, ``a``
    the more accurate by mean — the better ones grouped by the mechanism they beat, the undecided listed with the
    seeds each would need while they are few (:data:`LISTED_UNDECIDED`), else counted."""
    if not pairs:
        return ""
    beaten: dict[str, list[str]] = {}
    for a, b, kind, _, _ in pairs:
        if kind == PairOutcome.BETTER:
            beaten.setdefault(b, []).append(a)
    said = [f"{_and(winners)} better than {loser}" for loser, winners in beaten.items()]
    said += [
        f"{a} and {b} equivalent within ±{m:g} {unit}" for a, b, kind, m, _ in pairs if kind == PairOutcome.EQUIVALENT
    ]
    undecided = [
        (a, b, seeds) for a, b, kind, _, seeds in pairs if kind not in (PairOutcome.BETTER, PairOutcome.EQUIVALENT)
    ]
    if len(undecided) > LISTED_UNDECIDED:
        said.append(f"{len(undecided)} pairs undecided (the seeds each would need: the significance table)")
    else:
        said += [f"{a} vs {b} undecided ({_seeds_needed(seeds)})" for a, b, seeds in undecided]
    return " On accuracy, for all pairs together: " + "; ".join(said) + "."


def _and(names: Sequence[str]) -> str:
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"


# ─── diagnostics ───────────────────────────────────────────────────────────────────────────────
def floor_note(gain: float, unit: str, control: str, p: float) -> str:
    """A mechanism's seed-level difference ``gain`` (in ``unit``) against the ``control``, and its p adjusted for
    the family."""
    return f"{gain:+.2f} {unit} against the {control} control (adjusted p {p_is(p)})"


def floor_untested(control: str, why: str | None) -> str:
    """A mechanism could not be tested against the ``control``: ``why`` (None: no pair was tested)."""
    return f"not tested against {control}: {why if why is not None else 'no pair'}"


def flags(
    not_converged: int,
    unrecorded: int,
    compared_runs: int,
    *,
    seeds: int,
    min_seeds: int,
    at_floor: bool | None,
    floor: str,
) -> list[str]:
    """A mechanism's diagnostic flags: runs of its ``compared_runs`` that stopped while still improving
    (``not_converged``) or recorded no outcome (``unrecorded``); too few ``seeds`` for ``min_seeds``; at the
    floor, with its ``floor`` note. Empty: nothing stands in the way of a comparison."""
    out = []
    if not_converged:
        out.append(f"not converged: {not_converged} of {compared_runs} runs stopped while still improving")
    if unrecorded:
        out.append(f"convergence unknown: {unrecorded} of {compared_runs} runs recorded none")
    if seeds < min_seeds:
        out.append(f"too few seeds: n = {seeds} (a CI and a verdict need {min_seeds})")
    if at_floor:
        out.append(f"at the floor: {floor}")
    return out


def budgets_differ(task: str, trials: dict[str, int]) -> str:
    """The warning for a ``task`` whose mechanisms were tuned with different ``trials`` (mechanism -> trials)."""
    listing = ", ".join(f"{m} {n}" for m, n in trials.items())
    return f"{task}: tuning budgets differ between mechanisms (trials: {listing})"


class Stated(Protocol):
    """What :func:`comparison` reads of a fact (:class:`.verdict.Fact`): its kind, its value (a speed fact's None:
    no difference shown) and its words (:func:`fact`)."""

    @property
    def kind(self) -> str: ...

    @property
    def value(self) -> float | None: ...

    @property
    def text(self) -> str: ...


class Reason(Protocol):
    """What :func:`explain` reads of a reason a comparison is not fair (:class:`.diagnostics.Blocker`)."""

    @property
    def kind(self) -> str: ...

    @property
    def mechanism(self) -> str: ...

    @property
    def count(self) -> int: ...

    @property
    def total(self) -> int: ...

    @property
    def against(self) -> tuple[str, ...]: ...

    @property
    def note(self) -> str: ...


def _reason(r: Reason) -> str:
    """One reason of a kind :func:`explain` does not group."""
    if r.kind == BlockerKind.FLOOR:
        return f"neither {r.mechanism} nor {r.against[0]} beats the control significantly"
    if r.kind == BlockerKind.UNTESTED:
        return f"significance cannot be tested against {', '.join(r.against)}"
    return f"significance cannot be tested: {r.note or 'no pair'}"  # untestable


def explain(reasons: Iterable[Reason]) -> str:
    """``reasons`` (duplicates once) as one sentence, grouped by kind in the order they first appear:
    ``hard did not converge in 3 of 3 runs, soft in 1 of 3 runs; raise trainer.max_epochs; too few …``."""
    by_kind: dict[str, list[Reason]] = {}
    for r in dict.fromkeys(reasons):
        by_kind.setdefault(r.kind, []).append(r)
    parts = []
    for kind, found in by_kind.items():
        if kind == BlockerKind.NOT_CONVERGED:
            first, *rest = found
            text = f"{first.mechanism} did not converge in {first.count} of {first.total} runs"
            text += "".join(f", {r.mechanism} in {r.count} of {r.total} runs" for r in rest)
            parts.append(text + "; raise trainer.max_epochs")
        elif kind == BlockerKind.UNRECORDED:
            listing = ", ".join(f"{r.mechanism} {r.count} of {r.total} runs" for r in found)
            parts.append(f"no convergence record ({listing}): rerun with this version")
        elif kind == BlockerKind.TOO_FEW_SEEDS:
            listing = ", ".join(f"{r.mechanism} {r.count}" for r in found)
            needed = found[0].total
            seeds = ", ".join(map(str, range(needed)))
            parts.append(f"too few seed runs ({listing}; a verdict needs {needed}: seeds: [{seeds}])")
        elif kind == BlockerKind.UNEQUAL_BUDGETS:
            listing = "; ".join(f"{r.mechanism} {r.count}, {r.against[0]} {r.total}" for r in found)
            parts.append(f"unequal tuning budgets in trials ({listing})")
        else:
            parts += [_reason(r) for r in found]
    return "; ".join(parts)


FLAGS_NOTE = (
    "Flags — not converged: runs that stopped at the epoch cap while their validation metric or loss was "
    "still improving (see the learning curves); too few seeds: fewer than the seed runs a CI and a "
    "verdict need; at the floor: not shown better than the control mechanism (uniform "
    "attention); budgets: tuning trials and summed run wall-clock. A verdict is withheld while any of "
    "these makes a comparison unfair."
)


# ─── verdicts ──────────────────────────────────────────────────────────────────────────────────
#: the speed pass's kinds of work (:data:`.speed.KINDS`), as a report names them
SPEED_WORK = {
    "greedy": "decoding (per token, batch 1)",
    "beam": "beam search (per token, batch 1)",
    "train": "a training step",
}
#: the speed pass's kinds of work as a verdict line names them (the details are in the speed pass table)
SPEED_SHORT = {"greedy": "decoding", "beam": "beam search", "train": "training step"}


def fact(kind: str, value: float | None, *, reference: float | None = None) -> str:
    """A figure of a mechanism against the reference, by ``kind``:

    * ``greedy`` / ``beam`` / ``train`` (the speed pass): ``value`` the speed-up (above 1: faster; None: no
      difference shown; the time ratio's interval is in the speed pass table);
    * ``seed spread``: ``value`` its standard deviation over seeds over the reference's (observed, not tested: a
      test would be a claim outside the report's family);
    * ``failed runs``: ``value`` its share of failed runs, ``reference`` the reference's;
    * ``compute``: ``value`` its summed run time over the reference's.
    """
    if kind in SPEED_SHORT:
        what = SPEED_SHORT[kind]
        if value is None:
            return f"{what} not shown different"
        return f"{what} {max(value, 1 / value):.2f}× {'faster' if value > 1 else 'slower'}"
    if kind == "seed spread":
        size = f"{value:.1f}×" if value >= 1 else f"1/{1 / value:.1f}"
        return f"seed spread {size} (observed, not tested)"
    if kind == "failed runs":
        return f"{value:.0%} of runs failed (vs {reference:.0%})"
    if kind == "compute":
        return f"{value:.1f}× the run time"
    raise ValueError(f"no wording for a fact of kind {kind!r}")


def comparison(
    mechanism: str,
    reference: str,
    difference: float,
    *,
    unit: str,
    seeds: int,
    reference_seeds: int,
    outcome: str = "",
    margin: float | None = None,
    facts: Sequence[Stated] = (),
) -> str:
    """A pair verdict in one line (at most about 200 characters): the mean ``difference`` (mechanism minus
    reference, in ``unit``) over ``seeds`` and ``reference_seeds`` seed runs; with the family's ``outcome``
    (better, worse, equivalent within ±``margin``, undecided) and the ``facts`` (:class:`.verdict.Fact`), the
    speed pass's in one clause. The test behind it (interval, p, adjusted p, n, effect size,
    power, the seeds an undecided pair would need) is the pair's row in the significance table, the speed pass's
    intervals are in its table."""
    text = f"{mechanism} vs {reference}: {difference:+.2f} {unit} ({seeds} vs {reference_seeds} seeds)"
    if not outcome:
        return text
    said = f"equivalent within ±{margin:g} {unit}" if outcome == PairOutcome.EQUIVALENT else str(outcome)
    speed = [f for f in facts if f.kind in SPEED_SHORT]
    shown = ["no difference shown"] if all(f.value is None for f in speed) else [f.text for f in speed]
    clauses = [f"{text}: {said}"] + ([f"speed pass: {', '.join(shown)}"] if speed else [])
    return "; ".join(clauses + [f.text for f in facts if f.kind not in SPEED_SHORT])


def inconclusive(mechanism: str, reference: str, why: str) -> str:
    """A pair verdict withheld, because ``why`` (:func:`explain`)."""
    return f"{mechanism} vs {reference}: inconclusive: {why}"


def summary_withheld(why: str) -> str:
    """A task's summary when no winner can be named, because ``why`` (:func:`explain`)."""
    return f"inconclusive: {why}"


def _leader(mechanism: str, metric: str, mean: float, ci95: float | None) -> str:
    spread = f" ± {ci95:.2f} (95 % CI)" if ci95 is not None else ""
    return f"{mechanism} ({metric} {mean:.2f}{spread}"


def no_single_winner(
    mechanism: str, metric: str, mean: float, ci95: float | None, tied: Sequence[tuple[str, str]]
) -> str:
    """The most accurate ``mechanism`` (its ``mean`` ± ``ci95`` of ``metric``) is not shown better than the
    ``tied`` mechanisms — ``(name, outcome)`` each: equivalent within the margin, or undecided (the seeds that
    would decide each are in its line and the significance table)."""
    equivalent = [m for m, kind in tied if kind == PairOutcome.EQUIVALENT]
    undecided = [m for m, kind in tied if kind != PairOutcome.EQUIVALENT]
    parts = []
    if equivalent:
        parts.append(f"equivalent within the margin to {', '.join(equivalent)}")
    if undecided:
        parts.append(f"undecided against {', '.join(undecided)}")
    return f"no single winner: {_leader(mechanism, metric, mean, ci95)}) is " + "; ".join(parts)


def most_accurate(mechanism: str, metric: str, mean: float, ci95: float | None, seeds: int) -> str:
    """``mechanism`` is significantly above every other: its ``mean`` ± ``ci95`` of ``metric`` over ``seeds``."""
    return (
        f"most accurate: {_leader(mechanism, metric, mean, ci95)} over {seeds} seeds), better than every other "
        f"mechanism, all pairs tested together"
    )


# ─── decisions ─────────────────────────────────────────────────────────────────────────────────
def interval(mean: float, low: float | None, high: float | None, n: int) -> str:
    """A mean and its 95 % interval (``low`` None: from one run, ``n`` said instead)."""
    if low is None:
        return f"{mean:.3g} (n = {n})"
    return f"{mean:.3g} (95 % CI {low:.3g}–{high:.3g})"


def decision_withheld(task: str, why: str) -> str:
    """No decision for ``task``: the runs are not comparable, because ``why`` (:func:`explain`)."""
    return f"No decision for {task}: the runs are not comparable — {why}."


def controls_aside(controls: Sequence[str]) -> str:
    """Appended to a decision: the ``controls`` are the floor, not a choice."""
    return (
        f" ({', '.join(controls)}: the control, which attends nowhere — the floor the others are measured "
        f"against, not a choice.)"
    )


def constraint_unrecorded(metric: str) -> str:
    """Why a mechanism is excluded: its runs recorded no ``metric`` a constraint is on."""
    return f"recorded no {metric}"


def constraint_fails(metric: str, found: str, op: str, limit: float) -> str:
    """Why a mechanism is excluded: its ``metric`` (``found``: :func:`interval`) fails ``op limit``."""
    return f"{metric} {found} fails {op} {limit:g}"


def borderline(mechanism: str, metric: str, found: str) -> str:
    """A feasible ``mechanism`` whose interval of ``metric`` (``found``) crosses a limit."""
    return f"{mechanism} ({metric} {found})"


def nothing_feasible(limits: str, task: str, excluded: dict[str, str]) -> str:
    """No mechanism of ``task`` meets ``limits``: each with why (``excluded``)."""
    return f"No mechanism meets {limits} for {task}: " + "; ".join(f"{m}: {w}" for m, w in excluded.items()) + "."


def cost_saving(mine: float, rival: str, theirs: float, *, p: float | None, clear: bool, said: str = "") -> str:
    """`` (1.2 vs hard's 1.9, Welch p = 0.010)``: the pick's cost against the next cheapest ``rival``'s, and whether
    the saving is real (``clear``): ``said`` how that was found (the speed pass's words), else Welch's test over the
    seed runs (``p``; None: not testable)."""
    if said:
        return f" ({mine:.3g} vs {rival}'s {theirs:.3g}; {said})"
    noise = "" if p is None else (f", Welch p {p_is(p)}" if clear else f", not beyond noise: Welch p {p_is(p)}")
    return f" ({mine:.3g} vs {rival}'s {theirs:.3g}{noise})"


def pick(
    *,
    task: str,
    mechanism: str,
    limits: str,
    met: Sequence[tuple[str, str]],
    feasible: int,
    metric: str,
    score: float,
    tied: Sequence[str] = (),
    resource: str = "",
    saving: str = "",
    clear: bool = True,
    beaten: Sequence[tuple[str, float | None]] = (),
    excluded: dict[str, str] | None = None,
    borderlines: Sequence[str] = (),
    undecided: Sequence[tuple[str, int | None]] = (),
    margin: float | None = None,
) -> str:
    """The decision under constraints: pick ``mechanism``, which meets ``limits`` (``met``: each constraint's
    metric and interval), of ``feasible`` mechanisms that do; the most accurate by ``score`` on ``metric``, or
    equivalent within ±``margin`` to ``tied`` and the cheapest of them in ``resource`` (``saving``:
    :func:`cost_saving`, ``clear``: beyond noise). Then the less accurate for the family (``beaten``, with
    adjusted p), the ``undecided`` (with the seeds that would decide each), the ``excluded`` and the
    ``borderlines`` (:func:`borderline`)."""
    shown = ", ".join(f"{m} {i}" for m, i in met)
    text = f"**Pick {mechanism}** for {task}: it meets {limits} ({shown})"
    if feasible == 1:
        text += ", the only mechanism that does"
    elif not tied:
        text += f", and of the {feasible} that do it is the most accurate ({metric} {abs(score):.2f})"
        text += ", better than all of them" if not undecided else ""
    else:
        names = ", ".join(tied)
        text += (
            f"; on {metric} it is equivalent within ±{margin:g} to {names}, and these are the most accurate "
            f"of the {feasible} that meet it; it is the cheapest of them in {resource}{saving}"
        )
        if not clear:
            text += f" — as good on both: {mechanism} or {names} will do, the pick only follows the means"
    text += "."
    if beaten:
        text += " Less accurate: " + ", ".join(f"{m} (adjusted p {p_is(p)})" for m, p in beaten) + "."
    if undecided:
        text += " Undecided on accuracy: " + ", ".join(f"{m} ({_seeds_needed(n)})" for m, n in undecided) + "."
    if excluded:
        text += " Excluded: " + "; ".join(f"{m} ({w})" for m, w in excluded.items()) + "."
    if borderlines:
        text += " Borderline (the interval crosses a limit): " + ", ".join(borderlines) + "."
    return text


def undominated(
    *,
    task: str,
    names: Sequence[str],
    metric: str,
    best: str,
    score: float,
    unit: str,
    fastest: str | None,
    cost: str,
    timed: bool,
) -> str:
    """The decision without constraints: the mechanisms (``names``) no other beats on both ``metric`` (for the
    family) and decoding speed (the speed pass; ``timed`` False: there is none, so on ``metric`` alone); ``best``
    the most accurate (``score`` in ``unit``), ``fastest`` the one of ``names`` the pass shows faster than each
    other of ``names`` (None: none is); how to ask for one pick (a constraint on ``cost``)."""
    if not timed:
        speed = (
            " No speed pass was found, so cost is not weighed: time the runs side by side with lightning-attn "
            "benchmark runs --experiment NAME."
        )
        if len(names) == 1:
            return f"**{best}** for {task}: no other mechanism is better on {metric}.{speed}"
        return (
            f"For {task}, no other mechanism is better on {metric} than {', '.join(names)}: of these, {best} is "
            f"the most accurate ({score:.2f} {unit}).{speed}"
        )
    if len(names) == 1:
        return (
            f"**{best}** for {task}: no other mechanism is better on {metric} or faster at decoding (the speed "
            f"pass) without being worse on the other."
        )
    others = ", ".join(n for n in names if n != fastest)
    quickest = (
        f"{fastest} the fastest of them at decoding (the speed pass shows it faster than {others})"
        if fastest
        else f"{'neither' if len(names) == 2 else 'none'} shown faster at decoding than the "
        f"{'other' if len(names) == 2 else 'rest'} (the speed pass)"
    )
    return (
        f"For {task}, no other mechanism beats {', '.join(names)} on both {metric} and decoding speed: of these, "
        f"{best} is the most accurate ({score:.2f} {unit}) and {quickest}. Say what you need to get one pick, "
        f'e.g. --constraint "{cost}<=…".'
    )


def speed_note(settings: dict) -> str:
    """What the speed pass's table is and how it was measured."""
    return (
        f"One checkpoint per mechanism timed side by side in one process: {settings.get('rounds', '?')} "
        f"interleaved rounds in random order, {settings.get('threads', '?')} thread(s), on "
        f"{settings.get('device', '?')}; every decode exactly {settings.get('steps', '?')} tokens, the training "
        f"step on {settings.get('batch', '?')} test examples; the median per round. MiB: the peak of the tensors "
        "one call allocates. A mechanism is faster than another only where the interval of their time ratio, "
        "which holds for every pair of the pass at once, excludes 1 and the ratio is at least 5 % from it. The "
        "table's in-training speed columns were measured while other runs trained: diagnostics, not "
        "comparisons."
    )


def constraints_asked(constraints: Sequence[str]) -> str:
    """The line above the decisions naming the ``constraints`` they were made under (Markdown code)."""
    return f"Constraints: {', '.join(f'`{c}`' for c in constraints)}."


# ─── notes beside tables and plots ─────────────────────────────────────────────────────────────
def accuracy_note(min_seeds: int) -> str:
    """What the table's accuracy columns are, after ``Accuracy: <metric>``."""
    return f"(best run; mean ± 95 % CI over the seed runs, from {min_seeds} seeds up)."


SIG_NOTE = (
    "p: the test the verdict rests on, on the metric the table shows — Welch's t-test over the seed runs "
    "and, where the task gives per-item statistics of that metric, a two-level bootstrap over seeds and "
    "test items; a difference counts only when both find it. adjusted p: the same, adjusted for every pair "
    "of the task at once (Holm's step-down with Shaffer's count, difference and equivalence tests "
    "together), so that the chance of any false claim in the report's task stays at or below 5 %. "
    "outcome: better (adjusted p < 0.05), equivalent (the difference shown within ±margin by two "
    "one-sided tests, adjusted likewise), or undecided — not significant is not the same. power: the true "
    "difference the test would detect about 4 times in 5 at the family's level if the seed spread is as "
    "observed (an estimate). "
    "A tie is never a difference."
)

PARETO_NOTE = "every finished run; lines: each mechanism's Pareto frontier (lower latency, higher accuracy)"
SEED_SPREAD_NOTE = "one point per mechanism: its seed runs"
CURVES_NOTE = (
    "mean over each mechanism's compared runs (its seed runs); band: min to max; dashed: a run that stopped "
    "at the epoch cap while still improving"
)
GALLERY_NOTE = "the same validation examples, each mechanism's best run, last epoch"
NO_GALLERY = "Attention gallery: the best runs logged no attention pictures (task.attention_pictures_every=0)."


def importance_note(evaluator: str) -> str:
    """Under a hyperparameter-importance chart: which ``evaluator`` computed it."""
    return f"evaluator: {evaluator}"
