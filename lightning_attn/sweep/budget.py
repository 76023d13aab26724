"""A study's budget: what counts against it, what a worker does next, and when a sweep is done.

Trials that a dead or interrupted worker left behind (``stale``) do not count: they are retried with the
same parameters. Everything else — complete, pruned, failed, running, waiting — does.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime

import optuna
from optuna.trial import FrozenTrial, TrialState

from . import sequential
from . import spec as sweep_spec
from .actions import Action
from .spec import SweepSpec
from .storage import FAILURE_REASON, STALE


def counts(trials: list[FrozenTrial]) -> dict[str, int]:
    """Per state; ``counted`` = trials that use budget (all but those failed because a worker died)."""
    c = {"complete": 0, "pruned": 0, "failed": 0, "stale": 0, "running": 0, "waiting": 0}
    for t in trials:
        if t.state == TrialState.FAIL and t.user_attrs.get(STALE):
            c["stale"] += 1
        else:
            key = {
                TrialState.COMPLETE: "complete",
                TrialState.PRUNED: "pruned",
                TrialState.FAIL: "failed",
                TrialState.RUNNING: "running",
                TrialState.WAITING: "waiting",
            }[t.state]
            c[key] += 1
    c["counted"] = c["complete"] + c["pruned"] + c["failed"] + c["running"] + c["waiting"]
    return c


def next_action(trials: list[FrozenTrial], n_trials: int | None) -> Action:
    """``ask`` (budget left, or a retry waiting), ``wait`` (no budget left but trials still running,
    one of which may yet die and need a retry) or ``done``."""
    c = counts(trials)
    if c["waiting"] or n_trials is None or c["counted"] < n_trials:
        return Action.ASK
    return Action.WAIT if c["running"] else Action.DONE


def budget(spec: SweepSpec, key: str) -> int | None:
    """Trials per study: ``n_trials``, never more than a grid has points; a seeds study: one per seed."""
    if sweep_spec.is_seeds(key):
        return len(sweep_spec.seeds_plan(spec))
    if spec.sampler.kind != "grid":
        return spec.n_trials
    size = math.prod(len(v) for v in sweep_spec.grid_of(sweep_spec.space_of(spec, key)).values())
    return size if spec.n_trials is None else min(spec.n_trials, size)


def enqueue_seeds(
    spec: SweepSpec, search: optuna.Study | None, seeds: optuna.Study, search_finished: bool
) -> Action | None:
    """Fill a seeds study with the search's best parameters, once per seed, when the search is over; in a
    comparison (``search`` None) with the mechanism's fixed configuration at once.

    Returns ``wait`` while the search still runs anywhere, ``done`` when there is nothing to retrain
    (no completed trial), ``None`` once the seed trials exist (the usual budget logic takes over).
    """
    first = len(sweep_spec.seeds_of(spec))  # until decided: the first round; the looks give the others
    given = seeds.get_trials(deepcopy=False)
    if given:
        # resumed after the sweep file gained seeds: the ones the study lacks, with what its first seed ran (a
        # trial without a seed would train the configured seed again)
        if first > seeds.user_attrs.get(sequential.ROUND, first):
            inherited = {k: v for k, v in given[0].user_attrs.items() if k == "best_of"}
            sequential.enqueue(seeds, spec, given[0].params, inherited, first)
        return None
    if search is None:
        sequential.enqueue(seeds, spec, {}, {}, first)
        return None
    trials = search.get_trials(deepcopy=False)
    if not search_finished or any(t.state in (TrialState.RUNNING, TrialState.WAITING) for t in trials):
        return Action.WAIT
    if not any(t.state == TrialState.COMPLETE for t in trials):
        return Action.DONE
    best = search.best_trial
    sequential.enqueue(seeds, spec, best.params, {"best_of": best.number}, first)
    return None


def spent(spec: SweepSpec, studies: dict[str, optuna.Study]) -> bool:
    """Whether every study's budget is used up, with nothing running or waiting (a ``timeout``-only study
    is spent when nothing runs). A seeds study whose search completed no trial has nothing to retrain."""
    for key, study in studies.items():
        trials = study.get_trials(deepcopy=False)
        c = counts(trials)
        if c["running"] or c["waiting"]:
            return False
        if sweep_spec.is_seeds(key) and not trials:
            if sweep_spec.mechanism_of(key) not in studies:  # a comparison: its seed runs are still to come
                return False
            search = studies[sweep_spec.mechanism_of(key)].get_trials(deepcopy=False)
            if any(t.state == TrialState.COMPLETE for t in search):
                return False
            continue
        if spec.until_decided and sweep_spec.is_seeds(key):
            if not sequential.stopped(study):  # the next look may give it another seed
                return False
            continue
        limit = budget(spec, key)
        if limit is not None and c["counted"] < limit:
            return False
    return True


@dataclass
class Outcome:
    """What a sweep's trials came to, over every study: a scheduler's exit code is read off it."""

    complete: int = 0
    failed: int = 0  # failed for good (a dead worker's trial that is retried does not count)
    first_failure: str = ""  # "<study> #<trial>: <reason>" of the failure that came first
    without_result: list[str] = field(default_factory=list)  # studies with failures and no completed trial

    @property
    def nothing_done(self) -> bool:
        """Trials ran, and every one of them failed."""
        return self.complete == 0 and self.failed > 0


def outcome(studies: dict[str, optuna.Study]) -> Outcome:
    """Count the completed and the failed trials of ``studies`` and find the first failure's reason."""
    result = Outcome()
    failures = []  # (when it ended, what it says)
    for key, study in studies.items():
        trials = study.get_trials(deepcopy=False)
        c = counts(trials)
        result.complete += c["complete"]
        result.failed += c["failed"]
        if c["failed"] and not c["complete"]:
            result.without_result.append(key)
        for t in trials:
            if t.state == TrialState.FAIL and not t.user_attrs.get(STALE):
                reason = t.user_attrs.get(FAILURE_REASON, "no reason recorded")
                failures.append((t.datetime_complete or datetime.max, f"{study.study_name} #{t.number}: {reason}"))
    result.first_failure = min(failures)[1] if failures else ""
    return result
