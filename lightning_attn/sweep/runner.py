"""``lightning-attn sweep``: check, set up, run and sum up a sweep.

1. read the sweep file and check every mechanism's trial config composes; check ``--devices`` against
   the machine; reach the MLflow store and the Optuna storage — bad input or an unreachable server
   costs one line, before anything is written
2. take the sweep's launch lock (a sweep runs once at a time per folder), create or (``--resume``)
   reopen the studies — or (``--join``) join those another host created — and one MLflow parent run
   per study
3. start one worker per device (or one DDP group), show progress, replace a worker that dies
4. on SIGINT, SIGTERM or SIGHUP: stop the workers in order (their trials are retried on ``--resume``)
5. close the parent runs — FINISHED when every budget is spent, whatever happened to a worker on the
   way, FAILED when every trial failed — and print the summary and the exit code's reason
"""

from __future__ import annotations

import time
from datetime import datetime, timezone
from pathlib import Path

import optuna
from optuna.trial import TrialState
from rich.console import Console
from rich.live import Live

from ..config import ConfigError
from ..processes import Stopped, stop_signals
from ..tracking import check_tracking_store, mask_secrets, resolve_tracking_uri
from . import sequential
from . import spec as sweep_spec
from .budget import Outcome, outcome, spent
from .display import dry_run, progress_line, progress_table, summary_table
from .launch import LaunchLock, Workers, describe_exit, parse_devices
from .runs import close_parent_runs, open_parent_runs
from .spec import SweepSpec
from .storage import RUN_ID, STALE, describe, open_storage, sweep_lock
from .studies import Sweep, open_studies


def run_sweep(
    spec: SweepSpec,
    *,
    folder: Path | None = None,
    storage: str | None = None,
    devices: str | None = None,
    ddp: bool = False,
    resume: bool = False,
    join: bool = False,
    dry: bool = False,
    console: Console | None = None,
    command: list[str] | None = None,
) -> int:
    """Run (or with ``dry`` describe) a sweep. Returns 0 when every budget is spent and some trial completed
    (failed trials, if any, are counted in one line), 128 + the signal number when a signal stopped it, 1 when
    every trial failed (one line with the first failure's reason) or the budget could not be spent (the
    summary says why and how to resume)."""
    if console is None:
        console = Console(soft_wrap=True)
        if not console.is_terminal:  # a log file or a pipe: room for the summary table
            console = Console(soft_wrap=True, width=160)
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # the progress display says what matters
    folder = (folder or Path("outputs") / "sweeps" / spec.name).resolve()
    tracking_uri = resolve_tracking_uri(_tracking_uri_override(spec))
    # 1. everything that can be checked, before anything is written
    parsed = parse_devices(devices)
    if ddp and len(parsed.ids) < 2:
        raise ConfigError("--ddp needs at least two devices (e.g. --devices cpu:2 or 0,1)")
    if storage and storage.startswith("sqlite") and len(parsed.ids) > 1 and not ddp:
        raise ConfigError("SQLite is not safe for parallel workers: drop --storage (a journal file is the default)")
    sweep = Sweep(spec, folder, storage, tracking_uri, parsed, ddp)
    if dry:
        dry_run(sweep, console)
        return 0
    if parsed.warning:
        console.print(f"warning: {parsed.warning}", highlight=False)
    if join and not (storage and not storage.startswith("sqlite")):
        raise ConfigError(
            "--join is for several hosts on one storage: give --storage postgresql://… (or a "
            "journal:FILE on a file system every host shares)"
        )
    if storage:  # a database: reach it now (the default journal file is created in the sweep folder)
        open_storage(storage, folder, spec.heartbeat_interval, spec.grace_period)
    check_tracking_store(tracking_uri)
    # 2. one launch at a time, then the studies and their parent runs
    lock = LaunchLock(folder, spec.name)
    lock.acquire(command or ["lightning-attn", "sweep", spec.name])
    try:
        return _launch(sweep, resume, join, console)
    finally:
        lock.release()


def create_sweep(spec: SweepSpec, folder: Path, storage: str, *, devices: str | None, ddp: bool, resume: bool) -> Sweep:
    """Create a sweep's studies and parent runs (with ``resume``: reopen them) without starting a worker, and
    leave its definition in ``folder``: what a job array's submission does, so that its tasks, whatever order
    the scheduler starts them in, each join it (``devices`` is checked for its form only: the tasks' machines
    have the devices, not this one).

    Raises:
        ConfigError: bad input, or the sweep exists and ``resume`` was not asked for (one line).
        ConnectionError: the storage or the tracking store cannot be reached (one line, password masked).
    """
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    tracking_uri = resolve_tracking_uri(_tracking_uri_override(spec))
    parsed = parse_devices(devices, check=False)
    if ddp and len(parsed.ids) < 2:
        raise ConfigError("--ddp needs at least two devices (e.g. --devices cpu:2 or 0,1)")
    sweep = Sweep(spec, folder, storage, tracking_uri, parsed, ddp)
    opened = open_storage(storage, folder, spec.heartbeat_interval, spec.grace_period)
    check_tracking_store(tracking_uri)
    _open(sweep, opened, resume, join=False)
    return sweep


def _open(sweep: Sweep, storage: optuna.storages.BaseStorage, resume: bool, join: bool) -> None:
    spec, folder = sweep.spec, sweep.folder
    with sweep_lock(storage, folder, spec.name):  # two hosts starting at once: one creates, the other joins
        open_studies(sweep, storage, resume, join)
        open_parent_runs(sweep)
    _write_atomic(folder / sweep_spec.SPEC_FILE, sweep_spec.to_yaml(spec))


def _launch(sweep: Sweep, resume: bool, join: bool, console: Console) -> int:
    spec, folder = sweep.spec, sweep.folder
    _open(sweep, open_storage(sweep.storage_url, folder, spec.heartbeat_interval, spec.grace_period), resume, join)
    console.print(
        f"sweep {spec.name} (launch {sweep.launch}): {sweep.n_workers} worker(s) on {sweep.devices.label}"
        f"{' (ddp)' if sweep.ddp else ''}; storage {describe(sweep.storage_url, folder)}; "
        f"logs in {folder / 'logs'}",
        highlight=False,
    )
    workers = Workers(
        folder,
        sweep.devices,
        sweep.tracking_uri,
        storage_url=sweep.storage_url,
        ddp=sweep.ddp,
        launch=sweep.launch,
        max_restarts=spec.worker_restarts,
    )
    started_at, started = datetime.now(timezone.utc), time.monotonic()
    stopped: Stopped | None = None
    # 3.-4. run until the workers are done, or a signal stops everything
    with stop_signals():
        try:
            workers.start()
            _watch(sweep, workers, started, console)
        except Stopped as e:
            stopped = e
            console.print(
                f"{e} received: stopping the workers (their running trials are recorded as interrupted "
                "and retried on --resume) …",
                highlight=False,
            )
            workers.stop()
    # 5. the outcome
    done, trials = spent(spec, sweep.studies), outcome(sweep.studies)
    status, reason = _ending(done, trials, stopped, workers.exit_codes())
    close_parent_runs(sweep, status, reason)
    console.print(summary_table(sweep))
    if spec.until_decided:  # which mechanisms were decided, and which stopped at the cap
        seeds = {k: st for k, st in sweep.studies.items() if sweep_spec.is_seeds(k)}
        for line in sequential.summary(seeds):
            console.print(f"until decided: {line}", highlight=False)
    pass_stopped = _afterwards(sweep, console) if status == "FINISHED" else None
    _say_where(sweep, console, started_at, started)
    if status == "FINISHED":
        if trials.failed:
            alone = f"; no trial of {', '.join(trials.without_result)} completed" if trials.without_result else ""
            console.print(
                f"[yellow]{trials.failed} of {trials.failed + trials.complete} trial(s) failed[/]{alone}; "
                f"the first, {trials.first_failure}",
                highlight=False,
            )
        return pass_stopped.exit_code if pass_stopped is not None else 0
    if done:  # nothing to resume: every trial ran, and failed
        console.print(f"[red]sweep failed[/]: {reason} (logs: {sweep.folder / 'logs'})", highlight=False)
        return 1
    console.print(f"[red]sweep {status.lower()}[/]: {reason}. Resume it with the same command and --resume.")
    return stopped.exit_code if stopped is not None else 1


def _ending(
    done: bool, trials: Outcome, stopped: Stopped | None, failed: list[tuple[int, int]]
) -> tuple[str, str | None]:
    """The parent runs' status and reason: the budget spent (FINISHED, or FAILED when no trial completed),
    stopped by a signal (KILLED), or workers that died with budget left (FAILED)."""
    if done and trials.nothing_done:
        return "FAILED", f"no trial completed ({trials.failed} failed); the first, {trials.first_failure}"
    if done:
        return "FINISHED", None
    if stopped is not None:
        return "KILLED", f"stopped by {stopped}"
    return "FAILED", "; ".join(f"worker {i} exited with {describe_exit(c)}" for i, c in failed) or "budget not spent"


def _say_where(sweep: Sweep, console: Console, started_at: datetime, started: float) -> None:
    """This launch's rate, and where its runs are in MLflow."""
    elapsed = time.monotonic() - started
    finished = _finished_since(sweep, started_at)
    rate = f": {3600 * finished / elapsed:.0f} trials/hour" if finished else ""
    console.print(f"{finished} trial(s) finished in this launch, in {elapsed:.0f} s{rate}", highlight=False)
    uri = mask_secrets(sweep.tracking_uri)
    console.print(f"MLflow: experiment {sweep_spec.experiment_name(sweep.spec)} in {uri}", highlight=False)
    console.print(f"see it with: lightning-attn ui --tracking-uri '{uri}'", highlight=False)


def _speed_pass(sweep: Sweep, console: Console) -> Stopped | None:
    """Time one seed run's checkpoint per mechanism side by side (:mod:`lightning_attn.speedpass`), on the sweep's
    first device with a worker's threads, and log the pass to the experiment; a run without a checkpoint (or any
    other reason it cannot) is said in one line, and the sweep's outcome stands. Returns the signal that stopped
    it, if one did."""
    from .. import speedpass
    from ..saved_runs import RunRecordError

    devices = sweep.devices
    device = f"cuda:{devices.ids[0]}" if devices.kind == "gpu" else "cpu"
    studies = [st.study_name for k, st in sweep.studies.items() if sweep_spec.is_seeds(k)]
    experiment = sweep_spec.experiment_name(sweep.spec)
    console.print(f"speed pass: one checkpoint per mechanism, side by side on {device} …", highlight=False)
    with stop_signals():
        try:
            passes = speedpass.measure_runs(
                tracking_uri=sweep.tracking_uri,
                experiments=[experiment],
                studies=studies,
                device=device,
                threads=devices.threads or None,
            )
        except Stopped as e:
            console.print(
                f"{e} received: speed pass stopped, nothing logged (time the runs again with "
                f"lightning-attn benchmark runs --experiment {experiment})",
                highlight=False,
            )
            return e
        except (LookupError, RunRecordError, ConfigError, ValueError) as e:
            console.print(f"[yellow]speed pass skipped[/]: {mask_secrets(str(e))}", highlight=False)
            return None
    for result in passes:
        for line in result.lines():
            console.print(f"speed pass: {line}", highlight=False)
    return None


def _afterwards(sweep: Sweep, console: Console) -> Stopped | None:
    """After a finished sweep with seed runs: the speed pass (where asked), then each mechanism's best seed run as an
    MLflow model. Returns the signal that stopped the pass, if one did (then no models)."""
    if not any(sweep_spec.is_seeds(k) for k in sweep.studies):
        return None
    stopped = _speed_pass(sweep, console) if sweep.spec.speed_pass else None
    if stopped is None:
        _log_models(sweep, console)
    return stopped


def _log_models(sweep: Sweep, console: Console) -> None:
    """The best seed run of each mechanism as an MLflow model (:mod:`lightning_attn.served`), for a task it serves:
    what ``mlflow models serve`` answers with. One that cannot be logged is said in one line; the outcome stands."""
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    from ..saved_runs import RunRecordError
    from ..served import log_model, serves

    if not serves(sweep.spec.task):
        return
    for key, study in sweep.studies.items():
        if not sweep_spec.is_seeds(key):
            continue
        mechanism = sweep_spec.mechanism_of(key)
        try:
            run_id = study.best_trial.user_attrs[RUN_ID]
            data = MlflowClient(sweep.tracking_uri).get_run(run_id).data.params.get("data.kind")
            if not serves(sweep.spec.task, data):  # the built-in scenes: no image a served model could be sent
                continue
            uri = log_model(run_id, tracking_uri=sweep.tracking_uri)
        except (ValueError, RuntimeError, KeyError, RunRecordError, ConfigError, MlflowException) as e:  # no best…
            console.print(f"[yellow]no MLflow model of {mechanism}[/]: {mask_secrets(str(e))}", highlight=False)
            continue
        console.print(f"MLflow model of {mechanism} (its best seed run): {uri}", highlight=False)


def _finished_since(sweep: Sweep, since: datetime) -> int:
    """Trials that finished (complete, pruned, failed on their own) during this launch."""
    ended = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)
    count = 0
    for study in sweep.studies.values():
        for t in study.get_trials(deepcopy=False, states=ended):
            finished = t.datetime_complete is not None and t.datetime_complete.astimezone(timezone.utc) >= since
            count += finished and not t.user_attrs.get(STALE)
    return count


def _tracking_uri_override(spec: SweepSpec) -> str | None:
    for item in spec.overrides:
        key, _, value = item.partition("=")
        if key.strip() == "logger.tracking_uri" and value:
            return value
    return None


def _watch(sweep: Sweep, workers: Workers, started: float, console: Console) -> None:
    """Show progress until the workers are done; replace a worker that dies while work remains."""

    def done() -> bool:
        # whether any worker runs is read before the dead are replaced: one that dies after this look is
        # replaced on the next, never taken for a worker that finished
        idle = not workers.running
        for event in workers.replace_dead(work_left=not spent(sweep.spec, sweep.studies)):
            console.print(event, highlight=False)
        return idle and not workers.running

    if console.is_terminal:
        with Live(progress_table(sweep, 0), console=console, refresh_per_second=1) as live:
            while True:
                time.sleep(1)
                finished = done()
                live.update(progress_table(sweep, time.monotonic() - started))
                if finished:
                    return
    last = ""
    while True:
        time.sleep(1)
        finished = done()
        line = progress_line(sweep, time.monotonic() - started)
        if line.partition("] ")[2] != last:
            console.print(line, highlight=False)
            last = line.partition("] ")[2]
        if finished:
            return


def _write_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)
