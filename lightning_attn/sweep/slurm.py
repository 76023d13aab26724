"""``lightning-attn sweep FILE --slurm``: a sweep's hosts as a Slurm job array, through submitit.

The submission checks everything it can, then creates the sweep — its studies and parent runs, in the
storage every task shares — and submits one array task per host. Each task runs the sweep's launcher on
its node, joined to that sweep (``--join``, its own sweep folder ``<folder>/hosts/<task>``), whatever
order Slurm starts the tasks in. The budget is exact across them (:func:`.storage.sweep_lock`).

Preemption and time limits: submitit asks Slurm for a signal (``USR2``) ``signal_delay_s`` before the end;
the task then stops its launcher as a SIGTERM would (running trials are recorded as interrupted, retried
by whichever host gets to them, continuing from their last checkpoint) and is requeued; the requeued task
joins the sweep again. The launcher and its workers ignore ``USR2`` (Slurm signals every process of the
step): only the task decides what it means.

No secret is written: the storage URL travels to the tasks in the environment (``sbatch`` exports it, as
it does ``PGPASSWORD`` and ``MLFLOW_TRACKING_*``), never in the pickled task submitit keeps on disk, nor
on a command line. ``--slurm-executor local`` runs the same array through submitit's local executor, on
this machine, without Slurm: a rehearsal, and how it is tested.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from ..config import ConfigError
from ..tracking import mask_secrets
from . import spec as sweep_spec
from .launch import STOP_GRACE_S, STORAGE_ENV, describe_exit
from .runner import create_sweep
from .spec import SweepSpec
from .storage import JOURNAL

EXECUTORS = ("slurm", "local")
HOSTS_DIR = "hosts"  # <sweep folder>/hosts/<task>: each task's own sweep folder (logs, checkpoints, lock)
SIGNAL_DELAY_S = STOP_GRACE_S + 120  # the warning before a time limit: time for the workers to record their trials


@dataclass
class SlurmOptions:
    """What ``--slurm`` asks of the scheduler; the names are submitit's (``AutoExecutor.update_parameters``)."""

    timeout_min: int
    array: int = 1  # tasks in the job array: hosts running the sweep
    partition: str | None = None  # slurm_partition
    gpus_per_node: int | None = None
    cpus_per_task: int | None = None
    mem_gb: float | None = None
    parameters: dict[str, str] = field(default_factory=dict)  # slurm_additional_parameters: account, qos, …
    executor: str = "slurm"  # or "local": submitit's local executor, on this machine
    wait: bool = False  # wait for the tasks and exit with their outcome (always, with the local executor)

    def check(self) -> None:
        if self.executor not in EXECUTORS:
            raise ConfigError(f"--slurm-executor {self.executor}: choose one of {', '.join(EXECUTORS)}")
        if self.timeout_min is None or self.timeout_min < 1:
            raise ConfigError("--slurm needs --timeout-min MINUTES: how long each task may run (Slurm's --time)")
        if self.array < 1:
            raise ConfigError(f"--array {self.array}: give the number of tasks (hosts), at least 1")

    def executor_parameters(self, name: str) -> dict:
        params: dict = {
            "name": f"lightning-attn-{name}",
            "timeout_min": self.timeout_min,
            "nodes": 1,
            "tasks_per_node": 1,
            "slurm_array_parallelism": self.array,
            "slurm_signal_delay_s": SIGNAL_DELAY_S,
        }
        for key in ("gpus_per_node", "cpus_per_task", "mem_gb"):
            if getattr(self, key) is not None:
                params[key] = getattr(self, key)
        if self.partition:
            params["slurm_partition"] = self.partition
        if self.parameters:
            params["slurm_additional_parameters"] = dict(self.parameters)
        return params

    def default_devices(self) -> str:
        """Each task's ``--devices`` when none is given: the GPUs it asked for, else one CPU worker."""
        return ",".join(map(str, range(self.gpus_per_node))) if self.gpus_per_node else "cpu:1"


def parse_parameters(items: list[str] | None) -> dict[str, str]:
    """``--slurm-param account=lab --slurm-param qos=high`` as sbatch options."""
    out = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--slurm-param {item}: write an sbatch option as KEY=VALUE (e.g. account=lab)")
        out[key.strip().replace("-", "_")] = value.strip()
    return out


class HostTask:
    """One task of the array: the sweep's launcher on this node, joined to the sweep; requeued on a
    preemption or a time limit (submitit calls :meth:`checkpoint`). Holds no secret: it is pickled to disk."""

    def __init__(self, spec_file: Path, folder: Path, devices: str, ddp: bool, cwd: Path):
        self.spec_file, self.folder, self.devices, self.ddp, self.cwd = spec_file, folder, devices, ddp, cwd
        self._child: subprocess.Popen | None = None

    def command(self, index: int) -> list[str]:
        out = self.folder / HOSTS_DIR / str(index)
        return [
            sys.executable,
            "-m",
            "lightning_attn",
            "sweep",
            str(self.spec_file),
            "--join",
            "--out",
            str(out),
            "--devices",
            self.devices,
            *(["--ddp"] if self.ddp else []),
        ]

    def __call__(self, index: int) -> str:
        if STORAGE_ENV not in os.environ:
            raise RuntimeError(
                f"the job's environment has no {STORAGE_ENV}: submit it with the environment exported "
                "(sbatch's default, --export=ALL)"
            )
        os.chdir(self.cwd)  # where the submission ran: relative paths (a sqlite:/// store) mean the same
        # Slurm signals every process of the step: only this task decides what USR2 means (an ignored signal
        # stays ignored in the launcher and its workers)
        self._child = subprocess.Popen(self.command(index), preexec_fn=_ignore_usr2)
        try:
            code = _ended(self._child, timeout=None)
        finally:
            self._stop()
        if code != 0:
            raise RuntimeError(f"task {index}: the sweep's launcher exited with {describe_exit(code)}")
        return f"task {index}: done"

    def checkpoint(self, index: int):
        """A preemption or the time limit is near: stop the launcher (its running trials are recorded as
        interrupted, to be retried) and requeue this task, which joins the sweep again."""
        import submitit

        self._stop()
        return submitit.helpers.DelayedSubmission(
            HostTask(self.spec_file, self.folder, self.devices, self.ddp, self.cwd), index
        )

    def _stop(self) -> None:
        child = self._child
        if child is None or child.poll() is not None:
            return
        child.send_signal(signal.SIGTERM)
        if _ended(child, timeout=STOP_GRACE_S + 60) is None:
            child.kill()
            _ended(child, timeout=None)

    def __getstate__(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if k != "_child"} | {"_child": None}


def _ended(child: subprocess.Popen, timeout: float | None) -> int | None:
    """The child's exit code once it ends (None if ``timeout`` passes first). Polls, never ``Popen.wait``: the
    preemption handler (:meth:`HostTask.checkpoint`) runs inside this loop's frame, and a ``wait`` there
    would deadlock on the lock the interrupted ``wait`` holds."""
    deadline = None if timeout is None else time.monotonic() + timeout
    while (code := child.poll()) is None:
        if deadline is not None and time.monotonic() > deadline:
            return None
        time.sleep(0.2)
    return code


def _ignore_usr2() -> None:
    signal.signal(signal.SIGUSR2, signal.SIG_IGN)


def submit(
    spec: SweepSpec,
    options: SlurmOptions,
    *,
    folder: Path | None,
    storage: str | None,
    devices: str | None,
    ddp: bool,
    resume: bool,
    dry: bool = False,
) -> int:
    """Create the sweep and submit its hosts as a job array. Returns 0 once submitted (or, waiting, when every
    task finished), 1 when a task failed, 130 when Ctrl+C stopped the wait.

    Raises:
        ConfigError: bad input (one line), nothing submitted.
        ConnectionError: the storage or the tracking store cannot be reached (one line), nothing submitted.
    """
    options.check()
    try:
        import submitit  # noqa: F401
    except ModuleNotFoundError:
        raise ConfigError("--slurm submits through submitit: pip install 'lightning-attn[slurm]'") from None
    folder = (folder or Path("outputs") / "sweeps" / spec.name).resolve()
    storage = _shared_storage(storage, folder)
    devices = devices or options.default_devices()
    if dry:
        print(
            f"would submit {options.array} task(s) of sweep {spec.name} ({options.executor}), each: "
            f"--devices {devices}{' --ddp' if ddp else ''}; storage {mask_secrets(storage)}"
        )
        return 0
    executor = _executor(folder / "slurm", options, spec.name)
    sweep = create_sweep(spec, folder, storage, devices=devices, ddp=ddp, resume=resume)
    os.environ[STORAGE_ENV] = storage  # for the tasks: sbatch (and the local executor) hand the environment on
    task = HostTask(folder / sweep_spec.SPEC_FILE, folder, devices, ddp, Path.cwd())
    try:
        jobs = executor.map_array(task, range(options.array))
    except Exception as e:  # sbatch refused it (an unknown partition, a time over the limit, …)
        reason = " ".join(str(e).split())[:500]
        print(
            f"error: the submission was refused: {mask_secrets(reason)}. The sweep is created: fix the options "
            "and run the same command with --resume",
            file=sys.stderr,
        )
        return 1
    job_id = jobs[0].job_id.split("_")[0]
    _say_submitted(spec, options, job_id=job_id, devices=devices, ddp=ddp, storage=storage, folder=folder)
    print(
        f"MLflow: experiment {sweep_spec.experiment_name(spec)}; see it with: lightning-attn ui --tracking-uri "
        f"'{mask_secrets(sweep.tracking_uri)}'",
        flush=True,
    )
    if not (options.wait or options.executor == "local"):
        print(f"follow it with: squeue -j {job_id}; stop it with: scancel {job_id}", flush=True)
        return 0
    return _wait(jobs)


def _shared_storage(storage: str | None, folder: Path) -> str:
    """The Optuna storage every task of the array opens: a journal file in the sweep folder by default (on the
    file system the nodes share), a journal path made absolute, or PostgreSQL; SQLite is refused (one line)."""
    if storage is None:
        return f"journal:{folder / JOURNAL}"
    if storage.startswith("sqlite"):
        raise ConfigError(
            "SQLite cannot be shared by a job array's hosts: drop --storage (a journal file in the "
            "sweep folder, on a file system the nodes share) or give postgresql://…"
        )
    if storage.startswith("journal:"):
        return f"journal:{Path(storage.removeprefix('journal:')).resolve()}"
    return storage


def _say_submitted(
    spec: SweepSpec, options: SlurmOptions, *, job_id: str, devices: str, ddp: bool, storage: str, folder: Path
) -> None:
    print(
        f"submitted sweep {spec.name}: {options.array} task(s), job {job_id} ({options.executor}); each runs "
        f"--devices {devices}{' --ddp' if ddp else ''} on storage {mask_secrets(storage)}",
        flush=True,
    )
    print(f"task logs: {folder / 'slurm'} (submitit's), {folder / HOSTS_DIR}/<task>/logs (the workers')", flush=True)


def _executor(folder: Path, options: SlurmOptions, name: str):
    """submitit's executor for ``options``: Slurm's, or the local one (which takes its own parameter names)."""
    import submitit

    if options.executor == "local":
        executor = submitit.LocalExecutor(folder=folder)
        executor.update_parameters(
            timeout_min=options.timeout_min,
            signal_delay_s=SIGNAL_DELAY_S,
            nodes=1,
            tasks_per_node=1,
            gpus_per_node=options.gpus_per_node or 0,
        )
        return executor
    try:
        executor = submitit.AutoExecutor(folder=folder, cluster="slurm")
    except RuntimeError as e:  # no srun/sbatch on this machine
        raise ConfigError(f"--slurm: {e} (--slurm-executor local runs the array on this machine)") from None
    executor.update_parameters(**options.executor_parameters(name))
    return executor


def _wait(jobs: list) -> int:
    """Wait for every task; one line each; 1 when any failed."""
    failed = 0
    try:
        for job in jobs:
            try:
                print(job.result(), flush=True)
            except Exception as e:  # submitit re-raises the task's error, with its traceback in the task's log
                failed += 1
                reason = str(e).strip().splitlines()[-1] if str(e).strip() else type(e).__name__
                print(f"task {job.job_id} failed: {mask_secrets(reason)} (log: {job.paths.stdout})", flush=True)
    except KeyboardInterrupt:
        for job in jobs:
            job.cancel(check=False)
        print("stopped: the tasks were cancelled; run the same command with --resume to continue", flush=True)
        return 130
    return 1 if failed else 0
