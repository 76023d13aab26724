"""A sweep worker: one process (or one DDP group) taking trials from the shared studies.

The launcher (:mod:`.runner`) starts one worker per device. Each worker goes through the studies
(one per mechanism) and, while a study has budget left, asks Optuna for a trial and trains it::

    1. under the sweep's lock (one host's, or the database's): fail trials whose worker died (retrying
       them), check the budget, ask
    2. create the trial's MLflow run under the study's parent, record it on the trial
    3. train with a heartbeat beating and the pruning callback watching the validation metric
    4. tell Optuna the outcome and mirror it in MLflow (FINISHED / KILLED for pruned / FAILED + reason)

With ``--ddp`` the launcher starts one process per device instead, all of them one DDP job. Only
rank 0 talks to Optuna (so a trial exists once, not once per rank — optuna#4835); it broadcasts
each trial's overrides to the other ranks, which train the same config and report nothing.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import socket
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import optuna
from optuna.trial import TrialState

from ..config import ConfigError
from ..plugins import load_plugins
from ..private_apis import heartbeat_thread, trial_id_of
from ..processes import (
    EXIT_BAD_INPUT,
    StopSignal,
    check_stop,
    die_with_parent,
    signals_deferred,
    stops_at_safe_points,
)
from ..tracking import mask_secrets
from ..tracking import tags as T
from ..tracking.tags import failure_reason
from . import sequential
from . import spec as sweep_spec
from .actions import Action
from .budget import budget, enqueue_seeds, next_action
from .continuation import continuation, trial_folder
from .ddp import broadcast, dead_rank_reason, init_ddp
from .launch import GPU_SHARE_ENV, STORAGE_ENV
from .objective import train_trial, trial_overrides
from .runs import create_child_run, mirror_stale, set_run_status
from .samplers import make_pruner, make_sampler
from .spec import SweepSpec
from .storage import (
    FAILURE_REASON,
    FOLDER,
    RUN_ID,
    STALE,
    WORKER,
    fail_stale_trials,
    open_storage,
    record_worker_death,
    retry_attrs,
    sweep_lock,
)

log = logging.getLogger(__name__)


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


# ─── the trial loop ────────────────────────────────────────────────────────────────────────────
def run(worker: Worker) -> None:
    spec = worker.spec
    storage = open_storage(worker.storage_url, worker.folder, spec.heartbeat_interval, spec.grace_period)
    studies = {}
    for key in sweep_spec.study_keys(spec):
        seeds = sweep_spec.is_seeds(key)  # fixed parameters: nothing to sample, nothing to prune
        sampler = (
            optuna.samplers.RandomSampler()
            if seeds
            else make_sampler(spec, key, worker.index, worker.parallel, worker.launch)
        )
        pruner = optuna.pruners.NopPruner() if seeds else make_pruner(spec)
        name = sweep_spec.study_name(spec, key)
        studies[key] = optuna.load_study(study_name=name, storage=storage, sampler=sampler, pruner=pruner)
    started = {key: time.monotonic() for key in studies}
    pending = list(studies)
    while pending:
        for key in list(pending):
            study = studies[key]
            while True:
                check_stop()  # between trials: a safe point
                if spec.timeout is not None and time.monotonic() - started[key] > spec.timeout:
                    action = Action.DONE
                    break
                with sweep_lock(storage, worker.folder, spec.name):
                    fail_stale_trials(study, spec.max_retries, lambda t, uri=worker.tracking_uri: mirror_stale(uri, t))
                    action = None
                    if sweep_spec.is_seeds(key):
                        search = sweep_spec.mechanism_of(key)  # absent in a comparison: nothing to search
                        action = enqueue_seeds(spec, studies.get(search), study, search_finished=search not in pending)
                        if spec.until_decided and action is None:
                            seeds = {k: s for k, s in studies.items() if sweep_spec.is_seeds(k)}
                            sequential.take_look(spec, seeds, worker.tracking_uri)
                            action = sequential.next_action(study)
                    action = action or next_action(study.get_trials(deepcopy=False), budget(spec, key))
                    trial = study.ask() if action is Action.ASK else None
                if trial is None:
                    break
                run_trial(worker, study, sweep_spec.mechanism_of(key), trial)
            if action is Action.DONE:
                pending.remove(key)
        if pending:
            time.sleep(0.5)  # waiting for other workers: a retry or the seed runs may appear
            check_stop()
    if worker.ddp:
        broadcast(None)  # tell the other ranks there is nothing more


def run_trial(worker: Worker, study: optuna.Study, mechanism: str, trial: optuna.Trial) -> TrialState:
    try:
        return _run_trial(worker, study, mechanism, trial)
    except BaseException:
        # a rank of this DDP group died: whatever that raised here (a collective's error, the launcher's SIGTERM,
        # or both, one inside the other's handler), the trial failed for that reason and the group ends
        if worker.ddp and (died := dead_rank_reason(wait_s=5)):
            _record_dead_rank(worker, study, trial, died)
            raise SystemExit(f"ending this DDP group: {died}") from None
        raise


def _run_trial(worker: Worker, study: optuna.Study, mechanism: str, trial: optuna.Trial) -> TrialState:
    spec = worker.spec
    seed = trial.user_attrs.get("seed", spec.seed + (trial.number if spec.vary_seed else 0))
    heartbeat = heartbeat_thread(study, trial)
    heartbeat.start()
    values: list[float] | None = None
    run_id = reason = None
    try:
        params = sweep_spec.suggest(trial, sweep_spec.space_of(spec, mechanism))
        output = trial_folder(worker.folder, study.study_name, trial.number)
        with signals_deferred():  # a stop now must find the run's id, or the run would stay RUNNING
            run_id = _trial_run(worker, study, mechanism, trial=trial, seed=seed, output=output)
        overrides = trial_overrides(
            spec,
            mechanism,
            params,
            seed=seed,
            tracking_uri=worker.tracking_uri,
            output_dir=output,
            device_overrides=worker.device_overrides,
        )
        log.info("trial %s #%d: %s", study.study_name, trial.number, mask_secrets(" ".join(overrides)))
        with tempfile.TemporaryDirectory() as tmp:  # a retry's downloads live as long as its training
            resumption = continuation(
                worker.folder, worker.tracking_uri, study, trial=trial, into=Path(tmp), overrides=overrides
            )
            if worker.ddp:
                broadcast({"overrides": overrides, "resumption": resumption})
            values = train_trial(spec, overrides, trial, run_id, resumption)
        state = TrialState.COMPLETE
    except optuna.TrialPruned:
        state = TrialState.PRUNED
    except (KeyboardInterrupt, SystemExit):
        if worker.ddp and dead_rank_reason():
            raise  # not an interruption: run_trial records the dead rank
        # interrupted, not failed: the trial is retried on --resume and does not use budget
        _fail(study, trial, "interrupted (Ctrl+C or terminated)", stale=True)
        set_run_status(worker.tracking_uri, run_id, TrialState.FAIL, "interrupted", status="KILLED")
        study.enqueue_trial(trial.params, user_attrs=retry_attrs(trial))
        raise
    except Exception as e:  # a failed trial is a result: record why, go on with the sweep
        if worker.ddp and dead_rank_reason(wait_s=5):  # a collective noticed the dead peer before the launcher
            raise
        reason = failure_reason(e)
        log.warning("trial %s #%d failed: %s", study.study_name, trial.number, reason)
        trial.set_user_attr(FAILURE_REASON, reason)
        state = TrialState.FAIL
    finally:
        heartbeat.join()
    _tell(study, trial, values, state)
    set_run_status(worker.tracking_uri, run_id, state, reason)
    return state


def _trial_run(
    worker: Worker, study: optuna.Study, mechanism: str, *, trial: optuna.Trial, seed: int, output: Path
) -> str:
    """The trial's MLflow run, a child of its study's parent, and where the trial runs, in its user attributes."""
    spec = worker.spec
    looks = {T.LOOKS: sequential.looks(spec)} if spec.until_decided and sweep_spec.is_seeds_study(study) else {}
    run_id = create_child_run(
        worker.tracking_uri,
        spec.name,
        study,
        mechanism=mechanism,
        trial=trial,
        seed=seed,
        device=worker.device,
        worker=worker.index,
        tags=looks,
    )
    where = {"device": worker.device, "host": socket.gethostname(), "pid": os.getpid(), FOLDER: str(output)}
    for key, value in {RUN_ID: run_id, WORKER: worker.index, "seed": seed, **where}.items():
        trial.set_user_attr(key, value)
    return run_id


def _record_dead_rank(worker: Worker, study: optuna.Study, trial: optuna.Trial, reason: str) -> None:
    """A rank of this worker's DDP group died: the trial FAILED with why, retried as any dead worker's is."""
    log.warning("trial %s #%d: %s", study.study_name, trial.number, reason)
    frozen = record_worker_death(study, trial_id_of(trial), reason, worker.spec.max_retries)
    if frozen is not None:
        set_run_status(
            worker.tracking_uri, frozen.user_attrs.get(RUN_ID), TrialState.FAIL, frozen.user_attrs[FAILURE_REASON]
        )


def claim_gpu_share(device: str) -> None:
    """Several workers on one GPU (``--devices 0,0``): cap this one at its share of the memory, and refuse to
    start (one line) when that share is not free — another process holds it, or a neighbour took more."""
    workers = int(os.environ.get(GPU_SHARE_ENV, "1"))
    if workers < 2:
        return
    import torch

    free, total = torch.cuda.mem_get_info()
    share = total / workers
    if free < 0.9 * share:  # the CUDA context itself takes a few hundred MiB of every share
        raise ConfigError(
            f"{device}: {free / 2**20:.0f} MiB free, but each of its {workers} workers needs its share "
            f"of {share / 2**20:.0f} MiB; pack fewer workers on it"
        )
    torch.cuda.set_per_process_memory_fraction(1 / workers)
    log.info("%s: %d workers share this GPU; this one may use %.0f MiB", device, workers, share / 2**20)


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


# ─── DDP ranks > 0 ─────────────────────────────────────────────────────────────────────────────
def follow(spec: SweepSpec) -> None:
    """Ranks > 0 of a DDP worker: train whatever rank 0 broadcasts, until it broadcasts None."""
    while (payload := broadcast(None)) is not None:
        log.info("rank trial: %s", mask_secrets(" ".join(payload["overrides"])))
        try:
            train_trial(spec, payload["overrides"], None, None, payload.get("resumption"))
        except Exception as e:  # rank 0 records the failure; keep listening for the next trial
            log.warning("rank trial failed: %s", mask_secrets(str(e)))


# ─── entry point (started by the launcher) ─────────────────────────────────────────────────────
def _end_with_launcher(launcher_pid: int | None) -> None:
    """The worker gets SIGTERM when the launcher dies, however that happens."""
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
    _end_with_launcher(args.launcher_pid)
    load_plugins()  # mechanisms and tasks registered from outside the package (inherited from the launcher)
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    spec = sweep_spec.load(args.folder / sweep_spec.SPEC_FILE)
    storage, tracking_uri = os.environ.get(STORAGE_ENV), os.environ["MLFLOW_TRACKING_URI"]
    worker = Worker(
        spec,
        args.folder,
        storage,
        tracking_uri,
        args.index,
        args.device,
        args.override,
        args.parallel,
        args.ddp,
        args.launch,
    )
    # SIGINT, SIGTERM and SIGHUP stop the worker at its next safe point (a batch boundary, between trials): its
    # trial is recorded as interrupted (retried on --resume) and its MLflow run KILLED
    try:
        with stops_at_safe_points():
            if args.device.startswith("cuda"):
                claim_gpu_share(args.device)
            if args.ddp and init_ddp(cuda=args.device.startswith("ddp:gpu")) > 0:
                follow(spec)
            else:
                run(worker)
    except ConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt as e:
        return e.exit_code if isinstance(e, StopSignal) else 130
    return 0
