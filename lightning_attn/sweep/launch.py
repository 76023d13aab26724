"""Where a sweep's workers run, and how they start, are replaced and stop.

* :func:`parse_devices` — ``--devices`` checked against the machine before anything starts: GPU ids
  against the GPUs CUDA sees, ``cpu:N`` against the cores (more workers than cores is allowed, with a
  warning).
* :class:`LaunchLock` — one launch of a sweep at a time: the launcher holds an exclusive lock on a file
  in the sweep folder for as long as it lives; a second launch (or ``--resume``) is refused, naming the
  one that runs (host, PID, start time, command). The kernel releases the lock when the launcher dies,
  however it dies, so a lock left by a crashed or killed launch is stale and simply taken over.
* SIGINT, SIGTERM and SIGHUP all take one shutdown path (:func:`lightning_attn.processes.stop_signals`):
  the launcher stops the workers in order.
* :class:`Workers` — one process per worker slot (a CPU worker, a GPU, or the ranks of one DDP group),
  each in its own process group (a terminal's Ctrl+C reaches only the launcher) and each told to stop
  when the launcher dies (``PR_SET_PDEATHSIG``); a worker that dies while work remains is replaced, up to
  a limit, so the sweep keeps its width.
"""

from __future__ import annotations

import fcntl
import json
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from ..config import ConfigError
from ..processes import EXIT_BAD_INPUT, own_group, stop_group
from ..tracking import mask_secrets
from .ddp import FAILURE_ENV, RENDEZVOUS_ENV

STORAGE_ENV = "LIGHTNING_ATTN_SWEEP_STORAGE"  # the storage URL travels in the environment, not on `ps` lines
LOCK_FILE = "launch.lock"
GPU_SHARE_ENV = "LIGHTNING_ATTN_GPU_WORKERS"  # how many workers share this worker's GPU
STOP_GRACE_S = 60  # how long stopped workers get to record their trials before they are killed


# ─── devices ───────────────────────────────────────────────────────────────────────────────────
@dataclass
class Devices:
    """Where trials run: ``kind`` cpu or gpu; ``ids`` GPU ids (repeated to pack several workers on one),
    or one entry per CPU worker."""

    kind: str
    ids: list[str]
    threads: int = 0  # CPU: torch threads per worker (or per rank)
    warning: str = ""  # something to tell the user before starting

    @property
    def label(self) -> str:
        return f"cpu:{len(self.ids)}" if self.kind == "cpu" else ",".join(self.ids)


def cpu_cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def visible_gpus() -> int:
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def parse_devices(text: str | None, check: bool = True) -> Devices:
    """``cpu``, ``cpu:N``, ``0,1,2`` (GPU ids); none: every visible GPU, else ``cpu:1``. With ``check``
    false only the form is checked (the devices are another machine's: a job array's tasks').

    Raises:
        ConfigError: a malformed value, or (``check``) a GPU id this machine does not have.
    """
    if text is None:
        n = visible_gpus() if check else 0
        return parse_devices(",".join(map(str, range(n))) if n else "cpu:1")
    text = text.strip()
    if text == "cpu" or text.startswith("cpu:"):
        count = text.partition(":")[2] or "1"
        if not count.isdigit() or int(count) < 1:
            raise ConfigError(f"--devices {text}: write cpu:N with N >= 1 workers")
        workers, cores = int(count), cpu_cores()
        warning = (
            f"{workers} CPU workers on {cores} cores: they will share cores and each run slower"
            if workers > cores
            else ""
        )
        return Devices("cpu", [str(i) for i in range(workers)], max(1, cores // workers), warning)
    ids = [part.strip() for part in text.split(",") if part.strip()]
    if not ids or not all(i.isdigit() for i in ids):
        raise ConfigError(f"--devices {text}: write GPU ids like 0,1,2 or cpu:N")
    if not check:
        return Devices("gpu", ids)
    available = visible_gpus()
    missing = sorted({i for i in ids if int(i) >= available}, key=int)
    if missing:
        ids_seen = ", ".join(map(str, range(available)))
        seen = f"CUDA sees {available}: {ids_seen}" if available else "CUDA sees no GPU here"
        raise ConfigError(
            f"--devices {text}: no GPU {', '.join(missing)} on this machine ({seen}); "
            "use --devices cpu:N to run on the CPU"
        )
    return Devices("gpu", ids)


# ─── one launch at a time ──────────────────────────────────────────────────────────────────────
class LaunchLock:
    """An exclusive ``flock`` on ``<sweep folder>/launch.lock``, held while the launcher lives; the file
    says who holds it, so a refused launch can name the running one."""

    def __init__(self, folder: Path, name: str):
        self.path, self.name = folder / LOCK_FILE, name
        self._fd: int | None = None

    def acquire(self, command: list[str]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = self._read(fd)
            os.close(fd)
            raise ConfigError(
                f"sweep {self.name!r} is running: launcher PID {holder.get('pid', '?')} on {holder.get('host', '?')}, "
                f"started {holder.get('started', '?')} ({holder.get('command', '?')}). Wait for it to finish, or stop "
                f"it (kill {holder.get('pid', 'PID')}) and run the same command with --resume"
            ) from None
        info = {
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "command": mask_secrets(" ".join(command)),
            "started": datetime.now(timezone.utc).astimezone().isoformat(timespec="seconds"),
        }
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(info).encode(), 0)
        self._fd = fd

    @staticmethod
    def _read(fd: int) -> dict:
        try:
            return json.loads(os.pread(fd, 4096, 0).decode() or "{}")
        except (OSError, ValueError):
            return {}

    def release(self) -> None:
        if self._fd is not None:
            os.ftruncate(self._fd, 0)  # nobody holds it any more
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None


# ─── worker processes ──────────────────────────────────────────────────────────────────────────
@dataclass
class Slot:
    """One place a worker runs: a CPU share, a GPU, or a DDP group (``ranks`` processes)."""

    label: str  # what trials' tags say: "cpu", "cuda:1", "ddp:cpux2"
    env: dict[str, str]
    args: list[str]  # worker arguments beyond the sweep folder and index
    ranks: int = 1
    procs: list[subprocess.Popen] = field(default_factory=list)
    index: int = -1  # the worker index of the processes now in the slot
    restarts: int = 0
    failure_file: Path | None = None  # a DDP group's: the launcher writes there why a rank died


class Workers:
    """The launcher's workers: started per slot, watched, replaced when they die, stopped in order.

    Args:
        folder: the sweep folder (``logs/`` goes there).
        devices: what ``--devices`` said.
        tracking_uri: the MLflow store, handed to the workers in their environment.
        storage_url: the Optuna storage, handed to the workers in their environment.
        ddp: one DDP group over all devices instead of a worker per device.
        launch: this launch's number (workers seed their samplers with it, so no launch replays another).
        max_restarts: how many times a dead worker is replaced, in all, during this launch.
    """

    def __init__(
        self,
        folder: Path,
        devices: Devices,
        tracking_uri: str,
        *,
        storage_url: str | None,
        ddp: bool,
        launch: int,
        max_restarts: int,
    ):
        self.folder, self.devices, self.ddp, self.launch = folder, devices, ddp, launch
        self.max_restarts, self.restarts = max_restarts, 0
        self.next_index = 0
        self.logs = folder / "logs"
        env = {**os.environ, "PYTHONUNBUFFERED": "1", "MLFLOW_TRACKING_URI": tracking_uri}
        env.pop(STORAGE_ENV, None)
        if storage_url:
            env[STORAGE_ENV] = storage_url
        if devices.kind == "cpu":
            env |= {"OMP_NUM_THREADS": str(devices.threads), "MKL_NUM_THREADS": str(devices.threads)}
        self.slots = self._slots(env)

    def _slots(self, env: dict[str, str]) -> list[Slot]:
        devices = self.devices
        accelerator = "cpu" if devices.kind == "cpu" else "gpu"
        common = ["--threads", str(devices.threads), "--launch", str(self.launch), "--launcher-pid", str(os.getpid())]
        if self.ddp:
            world = len(devices.ids)
            ddp_env = {"MASTER_ADDR": "127.0.0.1", "WORLD_SIZE": str(world), "NODE_RANK": "0"}
            if devices.kind == "gpu":
                ddp_env["CUDA_VISIBLE_DEVICES"] = ",".join(devices.ids)
            overrides = [f"trainer.accelerator={accelerator}", f"trainer.devices={world}", "trainer.strategy=ddp"]
            args = ["--device", f"ddp:{accelerator}x{world}", "--ddp", *common, *(f"--override={o}" for o in overrides)]
            return [Slot(f"ddp:{accelerator}x{world}", env | ddp_env, args, ranks=world)]
        overrides = [f"trainer.accelerator={accelerator}", "trainer.devices=1", "trainer.strategy=auto"]
        slots = []
        for device in devices.ids:
            slot_env = dict(env)
            if devices.kind == "gpu":  # --devices 0,0,1,1: two workers share each GPU, each with its share
                slot_env |= {"CUDA_VISIBLE_DEVICES": device, GPU_SHARE_ENV: str(devices.ids.count(device))}
            label = "cpu" if devices.kind == "cpu" else f"cuda:{device}"
            args = ["--device", label, *common, *(f"--override={o}" for o in overrides)]
            if len(devices.ids) > 1:
                args.append("--parallel")
            slots.append(Slot(label, slot_env, args))
        return slots

    def start(self) -> None:
        self.logs.mkdir(parents=True, exist_ok=True)
        for slot in self.slots:
            self._start(slot)

    def _start(self, slot: Slot) -> None:
        slot.index, self.next_index = self.next_index, self.next_index + 1
        base = [sys.executable, "-m", "lightning_attn.sweep", str(self.folder), "--index", str(slot.index)]
        if slot.ranks == 1:
            log = self.logs / f"worker-{slot.index}.log"
            slot.procs = [_spawn([*base, *slot.args], slot.env, log)]
            return
        meeting = self.folder / "rendezvous"
        meeting.mkdir(parents=True, exist_ok=True)
        stamp = f"{slot.index}-{time.time_ns()}"  # a new file per group: a stale one would mislead the ranks
        group = {RENDEZVOUS_ENV: str(meeting / f"group-{stamp}"), FAILURE_ENV: str(meeting / f"failed-{stamp}")}
        slot.failure_file = Path(group[FAILURE_ENV])
        slot.procs = [
            _spawn(
                [*base, *slot.args],
                slot.env | group | {"RANK": str(r), "LOCAL_RANK": str(r)},
                self.logs / f"worker-{slot.index}-rank{r}.log",
            )
            for r in range(slot.ranks)
        ]

    @property
    def running(self) -> bool:
        return any(p.poll() is None for slot in self.slots for p in slot.procs)

    def replace_dead(self, work_left: bool) -> list[str]:
        """Replace the workers that died while work remains (up to ``max_restarts`` in all); one line each.
        A DDP group with a dead rank is ended at once: its other ranks would wait in a collective."""
        events = []
        for slot in self.slots:
            codes = [p.poll() for p in slot.procs]
            dead = [(r, c) for r, c in enumerate(codes) if c]
            if slot.ranks > 1 and dead and any(c is None for c in codes):
                rank, code = dead[0]
                slot.failure_file.write_text(
                    f"DDP rank {rank} of {slot.ranks} exited with {describe_exit(code)}", encoding="utf-8"
                )
                events.append(
                    f"worker {slot.index} ({slot.label}): rank {rank} exited with {describe_exit(code)}; "
                    "stopping its other ranks"
                )
                self._stop_procs([p for p in slot.procs if p.poll() is None])
                codes = [p.poll() for p in slot.procs]
            if not slot.procs or any(c is None for c in codes) or not any(codes):
                continue  # running, or finished cleanly
            what = f"worker {slot.index} ({slot.label}) exited with {describe_exit(next(c for c in codes if c))}"
            if not work_left:
                continue
            if EXIT_BAD_INPUT in codes:  # it said why on its log's last line; a new one would say it again
                events.append(f"{what}; not replaced: see {self.logs}")
                slot.procs = []
                continue
            if self.restarts >= self.max_restarts:
                events.append(f"{what}; not replaced: {self.max_restarts} replacement(s) already used")
                slot.procs = []
                continue
            self.restarts += 1
            slot.restarts += 1
            self._stop_procs(slot.procs)  # what is left of a DDP group
            self._start(slot)
            events.append(
                f"{what}; started worker {slot.index} in its place (its trial is retried once its "
                "heartbeat is older than the grace period)"
            )
        return events

    def exit_codes(self) -> list[tuple[int, int]]:
        """``(worker index, exit code)`` of the workers that ended with an error and were not replaced."""
        return [(s.index, c) for s in self.slots for c in (p.poll() for p in s.procs) if c]

    def stop(self) -> None:
        """Ask every worker to stop (SIGTERM: it records its trial as interrupted, to be retried), wait,
        then kill what is left."""
        self._stop_procs([p for slot in self.slots for p in slot.procs])

    @staticmethod
    def _stop_procs(procs: list[subprocess.Popen]) -> None:
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)  # a worker records its trial as interrupted, to be retried
        deadline = time.monotonic() + STOP_GRACE_S
        for p in procs:
            try:
                p.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                stop_group(p, grace_s=0)  # the worker and anything it started


def _spawn(cmd: list[str], env: dict, log_path: Path) -> subprocess.Popen:
    with open(log_path, "ab") as out:
        # its own process group in the launcher's session (processes.own_group): a terminal's Ctrl+C reaches the
        # launcher, which stops the workers in order, and the workers get the CPU share their nice value says; the
        # worker stops if the launcher dies without stopping it (processes.die_with_parent, in the worker)
        return subprocess.Popen(
            cmd, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, **own_group()
        )


def describe_exit(code: int) -> str:
    """``signal 9 (SIGKILL)`` or ``code 1``."""
    if code >= 0:
        return f"code {code}"
    try:
        return f"signal {-code} ({signal.Signals(-code).name})"
    except ValueError:
        return f"signal {-code}"
