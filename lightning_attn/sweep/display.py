"""What a sweep shows while it runs and when it ends: the live progress table (or one line per change
when the output is not a terminal), the summary table, and the dry run."""

from __future__ import annotations

from dataclasses import dataclass

from optuna.trial import FrozenTrial, TrialState
from rich.console import Console
from rich.table import Table

from ..tracking import mask_secrets
from ..tracking.seeds import seed_stats
from . import spec as sweep_spec
from .budget import budget, counts
from .runs import best_trials, describe_param
from .storage import WORKER, describe
from .studies import Sweep


def _values(trial: FrozenTrial) -> str:
    return ", ".join(f"{v:.4g}" for v in trial.values)


@dataclass
class StudyStatus:
    """One study at one moment, as both progress displays show it."""

    key: str
    budget: int | None
    counts: dict[str, int]
    best: list[FrozenTrial]
    running: list[FrozenTrial]

    @property
    def finished(self) -> int:
        return self.counts["complete"] + self.counts["pruned"] + self.counts["failed"]


def label(spec: sweep_spec.SweepSpec, key: str) -> str:
    """What a study is called on screen: ``soft``, ``soft+seeds`` (a search's seed runs); in a comparison,
    which has seed runs alone, the mechanism."""
    return sweep_spec.mechanism_of(key) if sweep_spec.is_comparison(spec) else key


def study_statuses(sweep: Sweep) -> list[StudyStatus]:
    out = []
    for key, study in sweep.studies.items():
        trials = study.get_trials(deepcopy=False)
        running = [t for t in trials if t.state == TrialState.RUNNING]
        out.append(
            StudyStatus(
                label(sweep.spec, key), budget(sweep.spec, key), counts(trials), best_trials(study, trials), running
            )
        )
    return out


def progress_table(sweep: Sweep, elapsed: float) -> Table:
    metric = ", ".join(o.metric for o in sweep.spec.objectives)
    table = Table(title=f"sweep {sweep.spec.name} — {elapsed:.0f} s", title_justify="left")
    for column in ("mechanism", "done", "pruned", "failed", "retried", "running", f"best {metric}", "workers"):
        table.add_column(column)
    for st in study_statuses(sweep):
        c = st.counts
        workers = " ".join(f"w{t.user_attrs.get(WORKER, '?')}:#{t.number}" for t in st.running)
        best = _values(st.best[0]) if len(st.best) == 1 else f"{len(st.best)} on the front"
        table.add_row(
            st.key,
            f"{st.finished}/{st.budget or '∞'}",
            str(c["pruned"]),
            str(c["failed"]),
            str(c["stale"]),
            str(c["running"]),
            best,
            workers,
        )
    return table


def progress_line(sweep: Sweep, elapsed: float) -> str:
    parts, running = [], []
    for st in study_statuses(sweep):
        c = st.counts
        text = f"{st.key} {st.finished}/{st.budget or '∞'} ({c['pruned']} pruned, {c['failed']} failed, "
        text += f"{c['running']} running)"
        if len(st.best) == 1:
            text += f" best {_values(st.best[0])}"
        parts.append(text)
        running += [(t.user_attrs.get(WORKER, "?"), f"{st.key}#{t.number}") for t in st.running]
    workers = " ".join(f"w{w}:{what}" for w, what in sorted(running, key=str))
    return f"[{elapsed:5.0f} s] " + " | ".join(parts) + (f" | {workers}" if workers else "")


def summary_table(sweep: Sweep) -> Table:
    objectives = ", ".join(f"{o.metric} ({o.direction[:3]})" for o in sweep.spec.objectives)
    table = Table(title=f"sweep {sweep.spec.name}: {objectives}", title_justify="left")
    for column in ("mechanism", "complete", "pruned", "failed", "retried", "best", "trial", "parameters"):
        table.add_column(column, overflow="fold")
    for mech, study in sweep.studies.items():
        trials = study.get_trials(deepcopy=False)
        c = counts(trials)
        best = best_trials(study, trials)
        # retried: interrupted, or lost with their worker; they do not use budget
        row = [label(sweep.spec, mech), str(c["complete"]), str(c["pruned"]), str(c["failed"]), str(c["stale"])]
        done = [t for t in trials if t.state == TrialState.COMPLETE]
        if sweep_spec.is_seeds(mech) and done:  # the best parameters again (a comparison: as configured), per seed
            st = seed_stats([t.values[0] for t in done])
            params = ", ".join(f"{k}={_short(v)}" for k, v in done[0].params.items()) or "(as configured)"
            best_of = done[0].user_attrs.get("best_of")
            table.add_row(*row, st.describe(), "—" if best_of is None else f"best of #{best_of}", params)
            continue
        if not best:
            table.add_row(*row, "—", "—", "no trial completed")
        for i, trial in enumerate(best):
            params = ", ".join(f"{k}={_short(v)}" for k, v in trial.params.items()) or "(defaults)"
            table.add_row(*(row if i == 0 else [""] * 5), _values(trial), f"#{trial.number}", params)
    return table


def _short(value) -> str:
    return f"{value:.3g}" if isinstance(value, float) else str(value)


def dry_run(sweep: Sweep, console: Console) -> None:
    spec = sweep.spec
    comparison, seeds = sweep_spec.is_comparison(spec), sweep_spec.seeds_of(spec)
    kind = "a comparison without tuning" if comparison else "a search"
    console.print(f"sweep [bold]{spec.name}[/] — task {spec.task}, {kind} of {len(spec.mechanisms)} mechanism(s)")
    console.print(f"  storage:    {describe(sweep.storage_url, sweep.folder)}")
    console.print(f"  tracking:   {mask_secrets(sweep.tracking_uri)} (experiment {sweep_spec.experiment_name(spec)})")
    console.print(f"  workers:    {sweep.n_workers} on {sweep.devices.label}{' as one DDP job' if sweep.ddp else ''}")
    if comparison:
        console.print(f"  budget:     {len(seeds)} run(s) per mechanism, one per seed {seeds}")
    else:
        budget = f"{spec.n_trials} trials" if spec.n_trials else "no trial limit"
        console.print(f"  budget:     {budget}{f', {spec.timeout:g} s' if spec.timeout else ''} per mechanism")
        objectives = ", ".join(f"{o.direction} {o.metric}" for o in spec.objectives)
        pruner = spec.pruner.kind if len(spec.objectives) == 1 else "none (multi-objective)"
        console.print(f"  objectives: {objectives}; sampler {spec.sampler.kind}; pruner {pruner}")
    for mech in spec.mechanisms:
        key = sweep_spec.StudyKey.of(mech, seeds=comparison)
        console.print(
            f"  study [bold]{sweep_spec.study_name(spec, key)}[/] (attention={spec.mechanisms[mech].attention})"
        )
        extra = spec.overrides + spec.mechanisms[mech].overrides
        if extra:
            console.print(f"    overrides: {' '.join(extra)}")
        for name, param in sweep_spec.space_of(spec, mech).items():
            console.print(f"    {name}: {describe_param(param)}")
    if seeds and not comparison:
        first = sweep_spec.study_name(spec, sweep_spec.StudyKey.of(next(iter(spec.mechanisms)), seeds=True))
        console.print(f"  then each mechanism's best parameters once per seed {seeds} (studies {first}, …)")
