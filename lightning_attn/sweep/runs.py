"""The MLflow side of a sweep: one parent run per study (created once, reopened on ``--resume``), closed
with the study's outcome — best value and parameters, trial counts, the Pareto front, the failures."""

from __future__ import annotations

import json
import logging

import optuna
from optuna.trial import FrozenTrial, TrialState

from ..tracking import ensure_experiment, log_params, mask_secrets
from ..tracking import tags as T
from ..tracking.datasets import record_children_datasets
from ..tracking.provenance import COMPARE, SWEEP, source_tags
from ..tracking.seeds import summarise_seeds
from . import spec as sweep_spec
from .budget import budget, counts
from .storage import FAILURE_REASON, PARENT_RUN, RETRY_OF, RUN_ID, STALE, describe
from .studies import Sweep

log = logging.getLogger(__name__)


def open_parent_runs(sweep: Sweep) -> None:
    """One MLflow parent run per study (reopened on resume); its id is a study user attribute."""
    from mlflow import MlflowClient

    spec = sweep.spec
    experiment_id = ensure_experiment(sweep.tracking_uri, sweep_spec.experiment_name(spec))
    client = MlflowClient(sweep.tracking_uri)
    for key, study in sweep.studies.items():
        mech = sweep_spec.mechanism_of(key)
        run_id = study.user_attrs.get(PARENT_RUN)
        if run_id is not None:  # resumed: running again, and whatever stopped it last time is history
            client.update_run(run_id, status="RUNNING")
            if T.FAILURE_REASON in client.get_run(run_id).data.tags:
                client.delete_tag(run_id, T.FAILURE_REASON)
            continue
        role = T.ROLE_SEEDS if sweep_spec.is_seeds(key) else T.ROLE_STUDY
        tags = {
            T.SWEEP: spec.name,
            T.STUDY: study.study_name,
            T.MECHANISM: mech,
            T.ROLE: role,
            T.NOTE: parent_note(spec, key),
        }
        tags |= source_tags(COMPARE if sweep_spec.is_comparison(spec) else SWEEP)  # its trials' runs copy these
        run = client.create_run(experiment_id, run_name=study.study_name, tags=tags)
        run_id = run.info.run_id
        params = {
            "task": spec.task,
            "mechanism": mech,
            "attention": spec.mechanisms[mech].attention,
            "n_trials": budget(spec, key),
            **({"seeds": ",".join(map(str, sweep_spec.seeds_of(spec)))} if sweep_spec.is_seeds(key) else {}),
            "timeout_s": spec.timeout,
            "objectives": ", ".join(f"{o.direction} {o.metric}" for o in spec.objectives),
            "sampler": spec.sampler.kind,
            "pruner": spec.pruner.kind if len(spec.objectives) == 1 else "none (multi-objective)",
            "storage": describe(sweep.storage_url, sweep.folder),
            "devices": sweep.devices.label + (" (ddp)" if sweep.ddp else ""),
            "overrides": " ".join(spec.overrides + spec.mechanisms[mech].overrides),
            **{f"space.{k}": describe_param(p) for k, p in sweep_spec.space_of(spec, mech).items()},
        }
        log_params(client, run_id, params)
        client.log_text(run_id, mask_secrets(sweep_spec.to_yaml(spec)), "sweep.yaml")
        study.set_user_attr(PARENT_RUN, run_id)


def parent_note(spec: sweep_spec.SweepSpec, key: str) -> str:
    """What a study's parent run compares, in words: its description (Markdown) in MLflow's UI."""
    mech = sweep_spec.mechanism_of(key)
    attention = spec.mechanisms[mech].attention or mech
    rivals = ", ".join(f"**{m}**" for m in spec.mechanisms if m != mech) or "nothing else (the only mechanism)"
    objectives = ", ".join(f"{o.direction} `{o.metric}`" for o in spec.objectives)
    if sweep_spec.is_seeds(key):
        seeds = ", ".join(map(str, sweep_spec.seeds_of(spec)))
        config = (
            "as configured (no tuning)"
            if sweep_spec.is_comparison(spec)
            else f"with the best parameters study `{sweep_spec.study_name(spec, mech)}` found"
        )
        what = (
            f"**{mech}** attention (`attention={attention}`) on {spec.task}, {config}, trained once per seed "
            f"({seeds}); each child run is one seed, this run holds their mean, std and 95 % CI"
        )
    else:
        space = "; ".join(f"`{k}` {describe_param(p)}" for k, p in sweep_spec.space_of(spec, mech).items())
        trials = budget(spec, key)
        what = (
            f"**{mech}** attention (`attention={attention}`) on {spec.task}: {trials or 'timed'} trials "
            f"searching {space}, to {objectives}; each child run is one trial"
        )
    kind = "Comparison" if sweep_spec.is_comparison(spec) else "Sweep"
    return f"{kind} `{spec.name}`: {what}. Compared with {rivals}."


def describe_param(p: sweep_spec.ParamSpec) -> str:
    if p.type == "categorical":
        text = f"categorical{list(p.choices)}"
    else:
        text = f"{p.type}[{p.low}, {p.high}]" + (" log" if p.log else "") + (f" step {p.step}" if p.step else "")
    if p.when:
        text += " when " + ", ".join(f"{k}={v}" for k, v in p.when.items())
    return text


def close_parent_runs(sweep: Sweep, status: str, reason: str | None = None) -> None:
    from mlflow import MlflowClient

    client = MlflowClient(sweep.tracking_uri)
    for key, study in sweep.studies.items():
        run_id = study.user_attrs[PARENT_RUN]
        trials = study.get_trials(deepcopy=False)
        c = counts(trials)
        for state in ("complete", "pruned", "failed", "stale"):
            client.log_metric(run_id, f"trials_{state}", c[state])
        best = best_trials(study, trials)
        if sweep_spec.is_seeds(key):
            # mean / std / 95 % CI over the seeds of every final metric their runs share
            runs = [t.user_attrs["mlflow_run_id"] for t in trials if t.state == TrialState.COMPLETE]
            summarise_seeds(client, run_id, [client.get_run(r).data.metrics for r in runs])
            if runs:
                client.set_tag(run_id, T.SEEDS_PARAMS, json.dumps(trials[0].params))
        elif len(best) == 1:
            for objective, value in zip(sweep.spec.objectives, best[0].values):
                client.log_metric(run_id, f"best/{objective.metric}", value)
            client.set_tag(run_id, T.BEST_TRIAL, str(best[0].number))
            client.set_tag(run_id, T.BEST_PARAMS, json.dumps(best[0].params))
            child = best[0].user_attrs.get("mlflow_run_id")
            if child:
                client.set_tag(run_id, T.BEST_RUN, child)
        elif best:
            client.set_tag(run_id, T.PARETO_TRIALS, ",".join(str(t.number) for t in best))
        front = [{"trial": t.number, "values": t.values, "params": t.params} for t in best]
        client.log_text(run_id, json.dumps(front, indent=2), "best_trials.json")
        record_children_datasets(client, client.get_run(run_id).info.experiment_id, run_id)
        failures = {t.number: t.user_attrs[FAILURE_REASON] for t in trials if FAILURE_REASON in t.user_attrs}
        if failures:
            client.log_text(run_id, json.dumps(failures, indent=2), "failed_trials.json")
        if reason:
            client.set_tag(run_id, T.FAILURE_REASON, reason)
        client.set_terminated(run_id, status)


def best_trials(study, trials) -> list:
    """The best trial (one objective) or the Pareto front (several); none before a trial completes."""
    if not any(t.state == TrialState.COMPLETE for t in trials):
        return []
    return study.best_trials if len(study.directions) > 1 else [study.best_trial]


# ─── child runs: one per trial ─────────────────────────────────────────────────────────────────
MLFLOW_STATUS = {TrialState.COMPLETE: "FINISHED", TrialState.PRUNED: "KILLED", TrialState.FAIL: "FAILED"}


def create_child_run(
    tracking_uri: str,
    sweep: str,
    study: optuna.Study,
    *,
    mechanism: str,
    trial: optuna.Trial,
    seed: int,
    device: str,
    worker: int,
    tags: dict[str, str] | None = None,
) -> str:
    """The trial's MLflow run, under its study's parent run, tagged with what identifies it (and ``tags``)."""
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri)
    parent = client.get_run(study.user_attrs[PARENT_RUN])
    retry = trial.user_attrs.get(RETRY_OF)
    run_tags = {
        T.PARENT: parent.info.run_id,
        T.SWEEP: sweep,
        T.STUDY: study.study_name,
        T.TRIAL: str(trial.number),
        T.MECHANISM: mechanism,
        T.DEVICE: device,
        T.WORKER: str(worker),
        T.SEED: str(seed),
        T.TRIAL_STATE: "RUNNING",
        **({T.RETRY_OF: str(retry)} if retry is not None else {}),
        # where it came from: the command and commit its sweep was launched with
        **{k: v for k, v in parent.data.tags.items() if k in (T.SOURCE_NAME, T.SOURCE_TYPE, T.GIT_COMMIT)},
        **(tags or {}),
    }
    # a seeds study retrains one configuration: its runs differ by seed, a search's by trial
    name = f"{mechanism}-seed{seed}" if "best_of" in trial.user_attrs else f"{mechanism}-t{trial.number}"
    run = client.create_run(parent.info.experiment_id, tags=run_tags, run_name=name)
    return run.info.run_id


def set_run_status(tracking_uri: str, run_id: str | None, state: TrialState, reason: str | None, status=None) -> None:
    """Mirror a trial's outcome on its MLflow run: the Optuna state, the reason, the run status."""
    if run_id is None:
        return
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri)
    client.set_tag(run_id, T.TRIAL_STATE, state.name)
    if reason:
        client.set_tag(run_id, T.FAILURE_REASON, reason)
    client.set_terminated(run_id, status or MLFLOW_STATUS[state])


def mirror_stale(tracking_uri: str, trial: FrozenTrial) -> None:
    """A trial failed because its worker died: say so, and mark its run FAILED with the reason."""
    retried = trial.user_attrs.get(STALE)  # a trial past its retries is no longer stale: FAILED for good
    reason = trial.user_attrs.get(FAILURE_REASON)
    log.warning("trial #%d: %s%s", trial.number, reason, "; retrying it" if retried else "")
    set_run_status(tracking_uri, trial.user_attrs.get(RUN_ID), TrialState.FAIL, trial.user_attrs.get(FAILURE_REASON))
