"""A sweep worker: one process (or one DDP group) taking trials from the shared studies.

The launcher (:mod:`.runner`) starts one worker per device. Each worker goes through the studies
(one per mechanism) and, while a study has budget left, asks Optuna for a trial and trains it::

    1. under a host-wide lock: fail trials whose worker died (retrying them), check the budget, ask
    2. create the trial's MLflow run under the study's parent, record it on the trial
    3. train with a heartbeat beating and the pruning callback watching the validation metric
    4. tell Optuna the outcome and mirror it in MLflow (FINISHED / KILLED for pruned / FAILED + reason)

With ``--ddp`` the launcher starts one process per device instead, all of them one DDP job. Only
rank 0 talks to Optuna (so a trial exists once, not once per rank — optuna#4835); it broadcasts
each trial's overrides to the other ranks, which train the same config and report nothing.
"""

from __future__ import annotations

import argparse
import hashlib
import logging
import math
import os
import signal
import socket
import sys
import time
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import optuna
from optuna.storages._heartbeat import get_heartbeat_thread
from optuna.trial import FrozenTrial, TrialState
from optuna_integration import PyTorchLightningPruningCallback

from ..config import ConfigError, compose, to_yaml
from ..processes import die_with_parent
from ..tracking import mask_secrets
from . import spec as sweep_spec
from .budget import budget, enqueue_seeds, next_action
from .launch import STORAGE_ENV
from .spec import SweepSpec
from .storage import FAILURE_REASON, RETRY_OF, STALE, budget_lock, fail_stale_trials, open_storage, retry_attrs

log = logging.getLogger(__name__)

SPEC_FILE = "sweep.yaml"
PARENT_RUN = "mlflow_parent_run_id"  # study user attribute
RUN_ID = "mlflow_run_id"  # trial user attribute
WORKER = "worker"  # trial user attribute: which worker runs it
STATE_TAG = "optuna.state"
MLFLOW_STATUS = {TrialState.COMPLETE: "FINISHED", TrialState.PRUNED: "KILLED", TrialState.FAIL: "FAILED"}


class ObjectiveError(RuntimeError):
    """The run finished but its objective value is missing or not a number."""


@dataclass
class Worker:
    spec: SweepSpec
    folder: Path
    storage_url: str | None
    tracking_uri: str
    index: int  # worker number, 0-based
    device: str  # what the trial's tags say: "cpu", "cuda:1", "ddp:cpu x2"
    device_overrides: list[str]
    parallel: bool  # other workers share the studies (TPE then uses constant_liar)
    ddp: bool = False
    launch: int = 1  # which launch of the sweep started this worker (1, then one more per --resume)


# ─── samplers and pruners ──────────────────────────────────────────────────────────────────────
def sampler_seed(spec: SweepSpec, launch: int, worker: int) -> int:
    """The sampler seed of one worker of one launch: reproducible from the sweep's seed, and different for
    every worker and every launch — a resumed sweep continues its search instead of replaying the random
    start-up points it already tried (each launch of a fixed seed would draw the same ones)."""
    return int(np.random.SeedSequence([spec.sampler.seed, launch, worker]).generate_state(1)[0])


def make_sampler(spec: SweepSpec, mechanism: str, worker: int, parallel: bool, launch: int = 1):
    s = spec.sampler
    seed = sampler_seed(spec, launch, worker)
    if s.kind == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if s.kind == "grid":
        return optuna.samplers.GridSampler(sweep_spec.grid_of(sweep_spec.space_of(spec, mechanism)), seed=seed)
    if s.kind == "nsga2":
        return optuna.samplers.NSGAIISampler(seed=seed)
    conditional = any(p.when for p in sweep_spec.space_of(spec, mechanism).values())
    return optuna.samplers.TPESampler(
        seed=seed, n_startup_trials=s.n_startup_trials, constant_liar=parallel, multivariate=True, group=conditional
    )


def make_pruner(spec: SweepSpec) -> optuna.pruners.BasePruner:
    p = spec.pruner
    if p.kind == "none" or len(spec.objectives) > 1 or prune_metric(spec) is None:
        return optuna.pruners.NopPruner()
    if p.kind == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=1)
    return optuna.pruners.MedianPruner(n_startup_trials=p.n_startup_trials, n_warmup_steps=p.n_warmup_steps)


def prune_metric(spec: SweepSpec) -> str | None:
    """The metric reported each epoch: a single validation objective, or nothing to prune on."""
    metric = spec.objectives[0].metric
    return metric if len(spec.objectives) == 1 and metric.startswith("val/") else None


class PruningCallback(PyTorchLightningPruningCallback):
    """optuna-integration's pruning callback, also under DDP with any storage.

    Its DDP mode insists on an RDB storage because Lightning's own launcher leaves the trial object
    in the launching process. Here the sweep starts the ranks itself and rank 0 *is* the process
    holding the trial (the other ranks get ``trial=None``): rank 0 reports and decides, the decision
    is broadcast, every rank stops, and :meth:`check_pruned` raises on rank 0 after ``fit``.
    """

    def __init__(self, trial: optuna.Trial | None, monitor: str):
        super().__init__(trial, monitor)  # type: ignore[arg-type]
        self.pruned_at: int | None = None

    def on_fit_start(self, trainer, pl_module) -> None:
        self.is_ddp_backend = trainer.world_size > 1

    def on_validation_end(self, trainer, pl_module) -> None:
        if not self.is_ddp_backend:
            return super().on_validation_end(trainer, pl_module)
        if trainer.sanity_checking:
            return None
        score = trainer.callback_metrics.get(self.monitor)
        prune = False
        if trainer.is_global_zero and score is not None and self._trial is not None:
            self._trial.report(score.item(), step=pl_module.current_epoch)
            prune = self._trial.should_prune()
        if trainer.strategy.broadcast(prune):
            trainer.should_stop = True
            self.pruned_at = pl_module.current_epoch
        return None

    def check_pruned(self) -> None:
        if self.pruned_at is not None and self._trial is not None:
            raise optuna.TrialPruned(f"Trial was pruned at epoch {self.pruned_at}.")


# ─── the trial loop ────────────────────────────────────────────────────────────────────────────
def run(worker: Worker) -> None:
    spec = worker.spec
    storage = open_storage(worker.storage_url, worker.folder, spec.heartbeat_interval, spec.grace_period)
    studies = {}
    for key in sweep_spec.study_keys(spec):
        seeds = sweep_spec.is_seeds(key)  # fixed parameters: nothing to sample, nothing to prune
        sampler = (optuna.samplers.RandomSampler() if seeds
                   else make_sampler(spec, key, worker.index, worker.parallel, worker.launch))  # fmt: skip
        pruner = optuna.pruners.NopPruner() if seeds else make_pruner(spec)
        name = sweep_spec.study_name(spec, key)
        studies[key] = optuna.load_study(study_name=name, storage=storage, sampler=sampler, pruner=pruner)
    started = {key: time.monotonic() for key in studies}
    pending = list(studies)
    while pending:
        for key in list(pending):
            study = studies[key]
            while True:
                if spec.timeout is not None and time.monotonic() - started[key] > spec.timeout:
                    action = "done"
                    break
                with budget_lock(worker.folder):
                    fail_stale_trials(study, on_failed=lambda t, w=worker: _mirror_stale(w, t))
                    action = None
                    if sweep_spec.is_seeds(key):
                        search = sweep_spec.mechanism_of(key)
                        action = enqueue_seeds(spec, studies[search], study, search_finished=search not in pending)
                    action = action or next_action(study.get_trials(deepcopy=False), budget(spec, key))
                    trial = study.ask() if action == "ask" else None
                if trial is None:
                    break
                run_trial(worker, study, sweep_spec.mechanism_of(key), trial)
            if action == "done":
                pending.remove(key)
        if pending:
            time.sleep(0.5)  # waiting for other workers: a retry or the seed runs may appear
    if worker.ddp:
        _broadcast(None)  # tell the other ranks there is nothing more


def run_trial(worker: Worker, study: optuna.Study, mechanism: str, trial: optuna.Trial) -> TrialState:
    spec = worker.spec
    seed = trial.user_attrs.get("seed", spec.seed + (trial.number if spec.vary_seed else 0))
    heartbeat = get_heartbeat_thread(trial._trial_id, study._storage)
    heartbeat.start()
    values: list[float] | None = None
    run_id = reason = None
    try:
        params = sweep_spec.suggest(trial, sweep_spec.space_of(spec, mechanism))
        run_id = _create_child_run(worker, study, mechanism, trial, seed)
        where = {"device": worker.device, "host": socket.gethostname(), "pid": os.getpid()}
        for key, value in {RUN_ID: run_id, WORKER: worker.index, "seed": seed, **where}.items():
            trial.set_user_attr(key, value)
        overrides = trial_overrides(worker, mechanism, params, seed, study.study_name, trial.number)
        log.info("trial %s #%d: %s", study.study_name, trial.number, mask_secrets(" ".join(overrides)))
        if worker.ddp:
            _broadcast({"overrides": overrides})
        values = train_trial(spec, overrides, trial, run_id)
        state = TrialState.COMPLETE
    except optuna.TrialPruned:
        state = TrialState.PRUNED
    except (KeyboardInterrupt, SystemExit):
        # interrupted, not failed: the trial is retried on --resume and does not use budget
        _fail(study, trial, "interrupted (Ctrl+C or terminated)", stale=True)
        _set_run_status(worker, run_id, TrialState.FAIL, "interrupted", status="KILLED")
        study.enqueue_trial(trial.params, user_attrs=retry_attrs(trial))
        raise
    except Exception as e:  # a failed trial is a result: record why, go on with the sweep
        reason = mask_secrets(f"{type(e).__name__}: {e}")[:2000]
        log.warning("trial %s #%d failed: %s", study.study_name, trial.number, reason)
        trial.set_user_attr(FAILURE_REASON, reason)
        state = TrialState.FAIL
    finally:
        heartbeat.join()
    _tell(study, trial, values, state)
    _set_run_status(worker, run_id, state, reason)
    return state


def trial_overrides(worker: Worker, mechanism: str, params: dict[str, Any], seed: int, study: str, number: int):
    spec = worker.spec
    return [
        *sweep_spec.run_overrides(spec, mechanism, params, seed),
        f"logger.tracking_uri={worker.tracking_uri}",
        f"logger.experiment_name={sweep_spec.experiment_name(spec)}",
        f"output_dir={worker.folder / 'trials' / study / str(number)}",
        "trainer.enable_progress_bar=false",  # the launcher shows sweep-level progress
        "trainer.enable_model_summary=false",
        *worker.device_overrides,
    ]


def train_trial(spec: SweepSpec, overrides: list[str], trial: optuna.Trial | None, run_id: str | None):
    """Train one trial's config; the objective values on rank 0 (None on other ranks)."""
    from ..train import train

    cfg = compose(overrides)
    _check_ranks_agree(cfg)
    monitor = prune_metric(spec)
    pruning = PruningCallback(trial, monitor) if monitor else None
    result = train(cfg, callbacks=[pruning] if pruning else [], run_id=run_id)
    if pruning is not None:
        pruning.check_pruned()
    if trial is None:
        return None
    values = []
    for objective in spec.objectives:
        if objective.metric not in result.metrics:
            known = ", ".join(sorted(result.metrics))
            raise ObjectiveError(f"the run logged no {objective.metric!r}; it logged: {known}")
        value = result.metrics[objective.metric]
        if not math.isfinite(value):
            raise ObjectiveError(f"{objective.metric} is {value}")
        values.append(value)
    return values


def _fail(study: optuna.Study, trial: optuna.Trial, reason: str, stale: bool = False) -> None:
    trial.set_user_attr(FAILURE_REASON, reason)
    if stale:
        trial.set_user_attr(STALE, True)
    _tell(study, trial, None, TrialState.FAIL)


def _tell(study: optuna.Study, trial: optuna.Trial, values: list[float] | None, state: TrialState) -> None:
    try:
        study.tell(trial, values, state=state)
    except RuntimeError as e:
        # the grid sampler calls study.stop() once its grid is used up, which Optuna only allows
        # inside study.optimize; the outcome is already stored, and the budget stops this loop anyway
        if "Study.stop" not in str(e):
            raise


# ─── MLflow ────────────────────────────────────────────────────────────────────────────────────
def _client(worker: Worker):
    from mlflow import MlflowClient

    return MlflowClient(worker.tracking_uri)


def _create_child_run(worker: Worker, study: optuna.Study, mechanism: str, trial: optuna.Trial, seed: int) -> str:
    client = _client(worker)
    parent = client.get_run(study.user_attrs[PARENT_RUN])
    retry = trial.user_attrs.get(RETRY_OF)
    tags = {
        "mlflow.parentRunId": parent.info.run_id,
        "sweep": worker.spec.name,
        "optuna.study": study.study_name,
        "optuna.trial": str(trial.number),
        "mechanism": mechanism,
        "device": worker.device,
        "worker": str(worker.index),
        "seed": str(seed),
        STATE_TAG: "RUNNING",
        **({"optuna.retry_of": str(retry)} if retry is not None else {}),
    }
    # a seeds study retrains one configuration: its runs differ by seed, a search's by trial
    name = f"{mechanism}-seed{seed}" if "best_of" in trial.user_attrs else f"{mechanism}-t{trial.number}"
    run = client.create_run(parent.info.experiment_id, tags=tags, run_name=name)
    return run.info.run_id


def _set_run_status(worker: Worker, run_id: str | None, state: TrialState, reason: str | None, status=None) -> None:
    if run_id is None:
        return
    client = _client(worker)
    client.set_tag(run_id, STATE_TAG, state.name)
    if reason:
        client.set_tag(run_id, FAILURE_REASON, reason)
    client.set_terminated(run_id, status or MLFLOW_STATUS[state])


def _mirror_stale(worker: Worker, trial: FrozenTrial) -> None:
    log.warning("trial #%d: %s; retrying it", trial.number, trial.user_attrs.get(FAILURE_REASON))
    _set_run_status(worker, trial.user_attrs.get(RUN_ID), TrialState.FAIL, trial.user_attrs.get(FAILURE_REASON))


# ─── DDP ───────────────────────────────────────────────────────────────────────────────────────
def _broadcast(payload: Any) -> Any:
    import torch.distributed as dist

    box = [payload]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def follow(spec: SweepSpec) -> None:
    """Ranks > 0 of a DDP worker: train whatever rank 0 broadcasts, until it broadcasts None."""
    while (payload := _broadcast(None)) is not None:
        log.info("rank trial: %s", mask_secrets(" ".join(payload["overrides"])))
        try:
            train_trial(spec, payload["overrides"], None, None)
        except Exception as e:  # rank 0 records the failure; keep listening for the next trial
            log.warning("rank trial failed: %s", mask_secrets(str(e)))


def _check_ranks_agree(cfg) -> None:
    """Under DDP: every rank must train the very same config (the failure optuna#4835 describes)."""
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()):
        return
    digest = hashlib.sha256(to_yaml(cfg).encode()).hexdigest()[:16]
    digests: list[str | None] = [None] * dist.get_world_size()
    dist.all_gather_object(digests, digest)
    if len(set(digests)) != 1:
        raise RuntimeError(f"DDP ranks would train different configs: {digests}")
    log.info("all %d ranks train config %s", len(digests), digest)


def _init_ddp() -> int:
    import torch.distributed as dist

    # a rank that dies leaves the others in a collective; give up after a while instead of forever
    dist.init_process_group("gloo", timeout=timedelta(minutes=10))
    return dist.get_rank()


# ─── entry point (started by the launcher) ─────────────────────────────────────────────────────
def _interrupt(signum, frame) -> None:
    raise KeyboardInterrupt(signal.Signals(signum).name)


def _stop_like_ctrl_c(launcher_pid: int | None) -> None:
    """SIGTERM and SIGHUP stop a worker the way Ctrl+C does: its trial is recorded as interrupted (retried on
    --resume) and its MLflow run KILLED. It gets SIGTERM when the launcher dies, however that happens."""
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _interrupt)
    die_with_parent(signal.SIGTERM)
    if launcher_pid is not None and os.getppid() != launcher_pid:  # the launcher died before we asked
        raise SystemExit("the sweep launcher is gone; stopping")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lightning_attn.sweep")
    parser.add_argument("folder", type=Path)
    parser.add_argument("--index", type=int, required=True)
    parser.add_argument("--device", required=True)
    parser.add_argument("--parallel", action="store_true")
    parser.add_argument("--ddp", action="store_true")
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument("--override", action="append", default=[], help="a device override for every trial")
    parser.add_argument("--launch", type=int, default=1, help="which launch of the sweep this is")
    parser.add_argument("--launcher-pid", type=int, help="stop when this process is gone")
    args = parser.parse_args(argv)
    from .. import console

    console.setup()
    _stop_like_ctrl_c(args.launcher_pid)
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    spec = sweep_spec.load(args.folder / SPEC_FILE)
    storage, tracking_uri = os.environ.get(STORAGE_ENV), os.environ["MLFLOW_TRACKING_URI"]
    worker = Worker(spec, args.folder, storage, tracking_uri, args.index, args.device, args.override, args.parallel,
                    args.ddp, args.launch)  # fmt: skip
    try:
        if args.ddp and _init_ddp() > 0:
            follow(spec)
        else:
            run(worker)
    except ConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return 0
