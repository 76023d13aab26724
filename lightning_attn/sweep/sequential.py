"""Seeds until decided (``compare --until-decided``, ``until_decided: true`` in a sweep file).

Each mechanism is first trained with the sweep's seeds. When every seed run of the round has finished, one
worker — under the sweep's lock — takes a *look*: it reads the runs back from MLflow and tests every pair of
mechanisms exactly as the report will (:func:`lightning_attn.report.comparisons.pair_tests`, over the family,
with every look so far: :class:`~lightning_attn.report.comparisons.Looks`). A mechanism whose pairs are all
decided — better, worse, or equivalent within the margin — stops, and so does one whose undecided pairs more
seeds up to ``max_seeds`` would likely not decide (an estimate: stopping early never adds a false claim); every
other gets one more seed, until ``max_seeds``. The runs record the looks (their ``seeds.looks`` tag), so the
report applies the same ones.

The seeds studies keep the state: :data:`ROUND` (the seed runs each open mechanism has been given) and
:data:`STOPPED` (why a mechanism gets no more).
"""

from __future__ import annotations

import logging

import optuna
from optuna.trial import TrialState

from . import spec as sweep_spec
from .actions import Action
from .spec import SweepSpec

log = logging.getLogger(__name__)

ROUND = "sequential.round"  # seeds study attribute: the seed runs its mechanism has been given
STOPPED = "sequential.stopped"  # seeds study attribute: why its mechanism gets no more seeds


def looks(spec: SweepSpec) -> str:
    """The looks' design as the runs record it: ``first:most`` seed runs a side."""
    return f"{len(sweep_spec.seeds_of(spec))}:{len(sweep_spec.seeds_plan(spec))}"


def enqueue(study: optuna.Study, spec: SweepSpec, params: dict, attrs: dict, upto: int) -> None:
    """Give ``study`` the seeds of :func:`~.spec.seeds_plan` it does not have yet, up to ``upto`` in all."""
    have = {t.user_attrs.get("seed") for t in study.get_trials(deepcopy=False) if t.user_attrs.get("retry_of") is None}
    for seed in sweep_spec.seeds_plan(spec)[:upto]:
        if seed not in have:
            study.enqueue_trial(params, user_attrs={**attrs, "seed": seed}, skip_if_exists=False)
    study.set_user_attr(ROUND, upto)


def finished(study: optuna.Study) -> bool:
    """Whether ``study`` has no trial running or waiting (its round is over, or it has none yet)."""
    return not any(t.state in (TrialState.RUNNING, TrialState.WAITING) for t in study.get_trials(deepcopy=False))


def take_look(spec: SweepSpec, seeds_studies: dict[str, optuna.Study], tracking_uri: str) -> None:
    """Under the sweep's lock: when every open mechanism's round has finished, test every pair as the report
    will, stop the mechanisms whose pairs are all decided (or that reached ``max_seeds``), and give the others
    their next seed. Nothing happens while a round is still running, or before the first round exists."""
    from ..report import aggregate, collect, comparisons

    open_ = {k: s for k, s in seeds_studies.items() if STOPPED not in s.user_attrs and ROUND in s.user_attrs}
    if not open_ or not all(finished(s) for s in seeds_studies.values()):
        return
    most = len(sweep_spec.seeds_plan(spec))
    names = [s.study_name for s in seeds_studies.values()]
    collected = collect.collect(tracking_uri, [sweep_spec.experiment_name(spec)], names)
    rows = aggregate.summarise(collected)
    tests = comparisons.pair_tests(
        rows,
        collect.predictions([r for row in rows for r in row.compared]),
        margins=comparisons.margins(rows),
        looks=comparisons.Looks(len(sweep_spec.seeds_of(spec)), most),
    )
    for key, study in open_.items():
        mechanism, done = sweep_spec.mechanism_of(key), study.user_attrs[ROUND]
        undecided = comparisons.undecided_against(tests, mechanism)
        if not undecided:
            study.set_user_attr(STOPPED, f"decided at {done} seeds")
        elif done >= most:
            study.set_user_attr(STOPPED, f"the cap of {most} seeds, undecided against {', '.join(undecided)}")
        elif not comparisons.worth_more_seeds(tests, mechanism, {sweep_spec.mechanism_of(k) for k in open_}):
            study.set_user_attr(
                STOPPED,
                f"{done} seeds, undecided against {', '.join(undecided)}: up to {most} "
                "seeds would likely not decide it (an estimate)",
            )
        elif not (complete := [t for t in study.get_trials(deepcopy=False) if t.state == TrialState.COMPLETE]):
            study.set_user_attr(STOPPED, "no seed run completed")
        else:  # one more seed, with the configuration its other seeds ran
            attrs = {k: v for k, v in complete[0].user_attrs.items() if k == "best_of"}
            enqueue(study, spec, complete[0].params, attrs, done + 1)
            continue
        log.info("%s: no more seeds: %s", study.study_name, study.user_attrs[STOPPED])


def next_action(study: optuna.Study) -> Action:
    """A seeds study run until decided: ``ask`` while a seed waits, ``wait`` while one runs or the next look may
    give it another, ``done`` once it is stopped."""
    trials = study.get_trials(deepcopy=False)
    if any(t.state == TrialState.WAITING for t in trials):
        return Action.ASK
    if any(t.state == TrialState.RUNNING for t in trials) or STOPPED not in study.user_attrs:
        return Action.WAIT
    return Action.DONE


def stopped(study: optuna.Study) -> bool:
    """Whether a seeds study run until decided gets no more seeds."""
    return STOPPED in study.user_attrs


def summary(seeds_studies: dict[str, optuna.Study]) -> list[str]:
    """One line per mechanism: why it stopped, or that it is still open."""
    return [
        f"{sweep_spec.mechanism_of(k)}: {s.user_attrs.get(STOPPED, 'still open')}" for k, s in seeds_studies.items()
    ]
