"""``lightning-attn sweep``: set the studies up, start the workers, show progress, sum up.

1. read the sweep file; check every mechanism's trial config composes (bad input fails here)
2. open the storage; create one study per mechanism — or, with ``--resume``, reopen them; an
   existing sweep without ``--resume`` is refused rather than silently mixed
3. create the MLflow experiment once and one parent run per study (workers would race)
4. start one worker process per device (or one DDP group) and show sweep-level progress
5. when the workers are done: best values and parameters onto each parent run, a summary table
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import optuna
from optuna.trial import FrozenTrial, TrialState
from rich.console import Console
from rich.live import Live
from rich.table import Table

from ..config import ConfigError
from ..tracking import ensure_experiment, log_params, mask_secrets, resolve_tracking_uri
from ..tracking import tags as T
from ..tracking.seeds import seed_stats, summarise_seeds
from . import spec as sweep_spec
from .spec import SweepSpec
from .storage import FAILURE_REASON, describe, open_storage
from .worker import PARENT_RUN, SPEC_FILE, STORAGE_ENV, WORKER, budget, counts

#: sweep-file fields that define what a study searches; changing them between runs mixes results
IDENTITY = ("task", "overrides", "mechanisms", "space", "objectives", "seed", "vary_seed")


@dataclass
class Devices:
    """Where trials run: ``kind`` cpu or gpu; ``ids`` GPU ids, or one entry per CPU worker."""

    kind: str
    ids: list[str]
    threads: int = 0  # CPU: torch threads per worker (or per rank)

    @property
    def label(self) -> str:
        return f"cpu:{len(self.ids)}" if self.kind == "cpu" else ",".join(self.ids)


def parse_devices(text: str | None) -> Devices:
    """``cpu``, ``cpu:N``, ``0,1,2`` (GPU ids); none: every visible GPU, else ``cpu:1``."""
    if text is None:
        import torch

        n = torch.cuda.device_count()
        return parse_devices(",".join(map(str, range(n))) if n else "cpu:1")
    text = text.strip()
    if text == "cpu" or text.startswith("cpu:"):
        count = text.partition(":")[2] or "1"
        if not count.isdigit() or int(count) < 1:
            raise ConfigError(f"--devices {text}: write cpu:N with N >= 1 workers")
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
        return Devices("cpu", [str(i) for i in range(int(count))], max(1, cores // int(count)))
    ids = [part.strip() for part in text.split(",") if part.strip()]
    if not ids or not all(i.isdigit() for i in ids):
        raise ConfigError(f"--devices {text}: write GPU ids like 0,1,2 or cpu:N")
    return Devices("gpu", ids)


@dataclass
class Sweep:
    spec: SweepSpec
    folder: Path
    storage_url: str | None
    tracking_uri: str
    devices: Devices
    ddp: bool = False
    studies: dict[str, optuna.Study] = field(default_factory=dict)

    @property
    def n_workers(self) -> int:
        return 1 if self.ddp else len(self.devices.ids)


# ─── 2-3: studies and parent runs ──────────────────────────────────────────────────────────────
def _identity(spec: SweepSpec) -> str:
    from omegaconf import OmegaConf

    data = OmegaConf.to_container(OmegaConf.structured(spec))
    return json.dumps({k: data[k] for k in IDENTITY}, sort_keys=True)


def open_studies(sweep: Sweep, resume: bool) -> None:
    spec = sweep.spec
    storage = open_storage(sweep.storage_url, sweep.folder, spec.heartbeat_interval, spec.grace_period)
    where = describe(sweep.storage_url, sweep.folder)
    existing = {s.study_name: s for s in optuna.get_all_study_summaries(storage, include_best_trial=False)}
    names = {key: sweep_spec.study_name(spec, key) for key in sweep_spec.study_keys(spec)}
    found = [n for n in names.values() if n in existing]
    if found and not resume:
        listing = ", ".join(f"{n} ({existing[n].n_trials} trials)" for n in found)
        raise ConfigError(
            f"sweep {spec.name!r} already exists in {where}: {listing}. Pass --resume to continue it, "
            f"or start a new one with another name (name=...) or folder (--out)"
        )
    for key, name in names.items():
        study = optuna.create_study(
            study_name=name, storage=storage, directions=sweep_spec.directions(spec), load_if_exists=True
        )
        stored = study.user_attrs.get("sweep.identity")
        if stored is not None and stored != _identity(spec):
            raise ConfigError(
                f"study {name} was started from a different sweep file (task, overrides, mechanisms, space, "
                f"objectives or seed changed); --resume only continues the same search. Use another name=..."
            )
        if stored is None:
            study.set_user_attr("sweep.identity", _identity(spec))
            study.set_user_attr("mechanism", sweep_spec.mechanism_of(key))
            study.set_user_attr("role", "seeds" if sweep_spec.is_seeds(key) else "search")
        sweep.studies[key] = study


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
            if "failure_reason" in client.get_run(run_id).data.tags:
                client.delete_tag(run_id, "failure_reason")
            continue
        role = T.ROLE_SEEDS if sweep_spec.is_seeds(key) else T.ROLE_STUDY
        tags = {T.SWEEP: spec.name, T.STUDY: study.study_name, T.MECHANISM: mech, T.ROLE: role}
        run = client.create_run(experiment_id, run_name=study.study_name, tags=tags)
        run_id = run.info.run_id
        params = {
            "task": spec.task,
            "mechanism": mech,
            "attention": spec.mechanisms[mech].attention,
            "n_trials": budget(spec, key),
            **({"seeds": ",".join(map(str, spec.seeds))} if sweep_spec.is_seeds(key) else {}),
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


def describe_param(p: sweep_spec.ParamSpec) -> str:
    if p.type == "categorical":
        text = f"categorical{list(p.choices)}"
    else:
        text = f"{p.type}[{p.low}, {p.high}]" + (" log" if p.log else "") + (f" step {p.step}" if p.step else "")
    if p.when:
        text += " when " + ", ".join(f"{k}={v}" for k, v in p.when.items())
    return text


# ─── 4: workers ────────────────────────────────────────────────────────────────────────────────
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_workers(sweep: Sweep) -> list[subprocess.Popen]:
    """One process per device, or with ``ddp`` one process per rank of a single DDP group."""
    logs = sweep.folder / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    base = [sys.executable, "-m", "lightning_attn.sweep", str(sweep.folder)]
    devices = sweep.devices
    accelerator = "cpu" if devices.kind == "cpu" else "gpu"
    procs = []
    # URLs travel in the environment, not on command lines that `ps` shows to every user
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "MLFLOW_TRACKING_URI": sweep.tracking_uri}
    env.pop(STORAGE_ENV, None)
    if sweep.storage_url:
        env[STORAGE_ENV] = sweep.storage_url
    if devices.kind == "cpu":
        env |= {"OMP_NUM_THREADS": str(devices.threads), "MKL_NUM_THREADS": str(devices.threads)}
    if sweep.ddp:
        world = len(devices.ids)
        label = f"ddp:{accelerator}x{world}"
        overrides = [f"trainer.accelerator={accelerator}", f"trainer.devices={world}", "trainer.strategy=ddp"]
        ddp_env = {"MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(_free_port()), "WORLD_SIZE": str(world),
                   "NODE_RANK": "0"}  # fmt: skip
        if devices.kind == "gpu":
            ddp_env["CUDA_VISIBLE_DEVICES"] = ",".join(devices.ids)
        for rank in range(world):
            rank_env = env | ddp_env | {"RANK": str(rank), "LOCAL_RANK": str(rank)}
            cmd = [*base, "--index", "0", "--device", label, "--ddp", "--threads", str(devices.threads)]
            cmd += [f"--override={o}" for o in overrides]
            procs.append(_spawn(cmd, rank_env, logs / f"worker-0-rank{rank}.log"))
        return procs
    overrides = [f"trainer.accelerator={accelerator}", "trainer.devices=1", "trainer.strategy=auto"]
    for index, device in enumerate(devices.ids):
        worker_env = dict(env)
        if devices.kind == "gpu":
            worker_env["CUDA_VISIBLE_DEVICES"] = device
        label = "cpu" if devices.kind == "cpu" else f"cuda:{device}"
        cmd = [*base, "--index", str(index), "--device", label, "--threads", str(devices.threads)]
        cmd += [f"--override={o}" for o in overrides]
        if len(devices.ids) > 1:
            cmd.append("--parallel")
        procs.append(_spawn(cmd, worker_env, logs / f"worker-{index}.log"))
    return procs


def _spawn(cmd: list[str], env: dict, log_path: Path) -> subprocess.Popen:
    with open(log_path, "ab") as out:
        # its own process group: Ctrl+C reaches the launcher, which then stops the workers in order
        return subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)


# ─── progress and summary ──────────────────────────────────────────────────────────────────────
def _best(study: optuna.Study, trials: list[FrozenTrial]) -> list[FrozenTrial]:
    done = [t for t in trials if t.state == TrialState.COMPLETE]
    if not done:
        return []
    return study.best_trials if len(study.directions) > 1 else [study.best_trial]


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


def study_statuses(sweep: Sweep) -> list[StudyStatus]:
    out = []
    for key, study in sweep.studies.items():
        trials = study.get_trials(deepcopy=False)
        running = [t for t in trials if t.state == TrialState.RUNNING]
        out.append(StudyStatus(key, budget(sweep.spec, key), counts(trials), _best(study, trials), running))
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
        table.add_row(st.key, f"{st.finished}/{st.budget or '∞'}", str(c["pruned"]), str(c["failed"]),
                      str(c["stale"]), str(c["running"]), best, workers)  # fmt: skip
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
        best = _best(study, trials)
        # retried: interrupted, or lost with their worker; they do not use budget
        row = [mech, str(c["complete"]), str(c["pruned"]), str(c["failed"]), str(c["stale"])]
        done = [t for t in trials if t.state == TrialState.COMPLETE]
        if sweep_spec.is_seeds(mech) and done:  # the best parameters again, once per seed
            st = seed_stats([t.value for t in done])
            params = ", ".join(f"{k}={_short(v)}" for k, v in done[0].params.items()) or "(defaults)"
            table.add_row(*row, st.describe(), f"best of #{done[0].user_attrs.get('best_of')}", params)
            continue
        if not best:
            table.add_row(*row, "—", "—", "no trial completed")
        for i, trial in enumerate(best):
            params = ", ".join(f"{k}={_short(v)}" for k, v in trial.params.items()) or "(defaults)"
            table.add_row(*(row if i == 0 else [""] * 5), _values(trial), f"#{trial.number}", params)
    return table


def _short(value) -> str:
    return f"{value:.3g}" if isinstance(value, float) else str(value)


# ─── 5: parents get the outcome ────────────────────────────────────────────────────────────────
def close_parent_runs(sweep: Sweep, status: str, reason: str | None = None) -> None:
    from mlflow import MlflowClient

    client = MlflowClient(sweep.tracking_uri)
    for key, study in sweep.studies.items():
        run_id = study.user_attrs[PARENT_RUN]
        trials = study.get_trials(deepcopy=False)
        c = counts(trials)
        for state in ("complete", "pruned", "failed", "stale"):
            client.log_metric(run_id, f"trials_{state}", c[state])
        best = _best(study, trials)
        if sweep_spec.is_seeds(key):
            # mean / std / 95 % CI over the seeds of every final metric their runs share
            runs = [t.user_attrs["mlflow_run_id"] for t in trials if t.state == TrialState.COMPLETE]
            summarise_seeds(client, run_id, [client.get_run(r).data.metrics for r in runs])
            if runs:
                client.set_tag(run_id, "seeds.params", json.dumps(trials[0].params))
        elif len(best) == 1:
            for objective, value in zip(sweep.spec.objectives, best[0].values):
                client.log_metric(run_id, f"best/{objective.metric}", value)
            client.set_tag(run_id, "best.trial", str(best[0].number))
            client.set_tag(run_id, "best.params", json.dumps(best[0].params))
            child = best[0].user_attrs.get("mlflow_run_id")
            if child:
                client.set_tag(run_id, "best.run_id", child)
        elif best:
            client.set_tag(run_id, "pareto.trials", ",".join(str(t.number) for t in best))
        front = [{"trial": t.number, "values": t.values, "params": t.params} for t in best]
        client.log_text(run_id, json.dumps(front, indent=2), "best_trials.json")
        failures = {t.number: t.user_attrs[FAILURE_REASON] for t in trials if FAILURE_REASON in t.user_attrs}
        if failures:
            client.log_text(run_id, json.dumps(failures, indent=2), "failed_trials.json")
        if reason:
            client.set_tag(run_id, "failure_reason", reason)
        client.set_terminated(run_id, status)


# ─── the command ───────────────────────────────────────────────────────────────────────────────
def dry_run(sweep: Sweep, console: Console) -> None:
    spec = sweep.spec
    console.print(f"sweep [bold]{spec.name}[/] — task {spec.task}, {len(spec.mechanisms)} studies")
    console.print(f"  storage:    {describe(sweep.storage_url, sweep.folder)}")
    console.print(f"  tracking:   {mask_secrets(sweep.tracking_uri)} (experiment {sweep_spec.experiment_name(spec)})")
    console.print(f"  workers:    {sweep.n_workers} on {sweep.devices.label}{' as one DDP job' if sweep.ddp else ''}")
    budget = f"{spec.n_trials} trials" if spec.n_trials else "no trial limit"
    console.print(f"  budget:     {budget}{f', {spec.timeout:g} s' if spec.timeout else ''} per mechanism")
    objectives = ", ".join(f"{o.direction} {o.metric}" for o in spec.objectives)
    pruner = spec.pruner.kind if len(spec.objectives) == 1 else "none (multi-objective)"
    console.print(f"  objectives: {objectives}; sampler {spec.sampler.kind}; pruner {pruner}")
    for mech in spec.mechanisms:
        console.print(
            f"  study [bold]{sweep_spec.study_name(spec, mech)}[/] (attention={spec.mechanisms[mech].attention})"
        )
        extra = spec.overrides + spec.mechanisms[mech].overrides
        if extra:
            console.print(f"    overrides: {' '.join(extra)}")
        for key, p in sweep_spec.space_of(spec, mech).items():
            console.print(f"    {key}: {describe_param(p)}")
    if spec.seeds:
        first = sweep_spec.study_name(spec, next(iter(spec.mechanisms)) + sweep_spec.SEEDS)
        console.print(f"  then each mechanism's best parameters once per seed {spec.seeds} (studies {first}, …)")


def run_sweep(
    spec: SweepSpec,
    *,
    folder: Path | None = None,
    storage: str | None = None,
    devices: str | None = None,
    ddp: bool = False,
    resume: bool = False,
    dry: bool = False,
    console: Console | None = None,
) -> int:
    """Run (or with ``dry`` describe) a sweep; 0 when every worker finished cleanly."""
    if console is None:
        console = Console(soft_wrap=True)
        if not console.is_terminal:  # a log file or a pipe: room for the summary table
            console = Console(soft_wrap=True, width=160)
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # the progress display says what matters
    folder = (folder or Path("outputs") / "sweeps" / spec.name).resolve()
    tracking_uri = resolve_tracking_uri(_tracking_uri_override(spec))
    parsed = parse_devices(devices)
    if ddp and len(parsed.ids) < 2:
        raise ConfigError("--ddp needs at least two devices (e.g. --devices cpu:2 or 0,1)")
    if storage and storage.startswith("sqlite") and len(parsed.ids) > 1 and not ddp:
        raise ConfigError("SQLite is not safe for parallel workers: drop --storage (a journal file is the default)")
    sweep = Sweep(spec, folder, storage, tracking_uri, parsed, ddp)
    if dry:
        dry_run(sweep, console)
        return 0
    open_studies(sweep, resume)
    open_parent_runs(sweep)
    _write_atomic(folder / SPEC_FILE, sweep_spec.to_yaml(spec))
    console.print(f"sweep {spec.name}: {sweep.n_workers} worker(s) on {parsed.label}{' (ddp)' if ddp else ''}; "
                  f"storage {describe(storage, folder)}; logs in {folder / 'logs'}")  # fmt: skip
    procs = start_workers(sweep)
    started = time.monotonic()
    status, reason = "FINISHED", None
    try:
        _watch(sweep, procs, started, console)
    except KeyboardInterrupt:
        console.print("interrupted: stopping the workers (their trials are retried on --resume) …")
        _stop(procs)
        status, reason = "KILLED", "interrupted"
    codes = [p.wait() for p in procs]
    if status == "FINISHED" and any(codes):
        status = "FAILED"
        reason = "; ".join(f"worker {i} exited with {_exit(c)}" for i, c in enumerate(codes) if c)
    elapsed = time.monotonic() - started
    close_parent_runs(sweep, status, reason)
    console.print(summary_table(sweep))
    finished = 0
    for study in sweep.studies.values():
        c = counts(study.get_trials(deepcopy=False))
        finished += c["complete"] + c["pruned"] + c["failed"]  # not the interrupted or lost ones
    rate = 3600 * finished / max(elapsed, 1e-9)
    console.print(f"{finished} trials finished in {elapsed:.0f} s: {rate:.0f} trials/hour")
    console.print(f"MLflow: experiment {sweep_spec.experiment_name(spec)} in {mask_secrets(tracking_uri)}")
    console.print(f"see it with: lightning-attn ui --tracking-uri '{mask_secrets(tracking_uri)}'", highlight=False)
    if status != "FINISHED":
        console.print(f"[red]sweep {status.lower()}[/]: {reason}. Run the same command with --resume to finish it.")
        return 1
    return 0


def _tracking_uri_override(spec: SweepSpec) -> str | None:
    for item in spec.overrides:
        key, _, value = item.partition("=")
        if key.strip() == "logger.tracking_uri" and value:
            return value
    return None


def _watch(sweep: Sweep, procs: list[subprocess.Popen], started: float, console: Console) -> None:
    if console.is_terminal:
        with Live(progress_table(sweep, 0), console=console, refresh_per_second=1) as live:
            while any(p.poll() is None for p in procs):
                time.sleep(1)
                live.update(progress_table(sweep, time.monotonic() - started))
        return
    last = ""
    while any(p.poll() is None for p in procs):
        time.sleep(1)
        line = progress_line(sweep, time.monotonic() - started)
        if line.partition("] ")[2] != last:
            console.print(line, highlight=False)
            last = line.partition("] ")[2]


def _stop(procs: list[subprocess.Popen]) -> None:
    for p in procs:
        if p.poll() is None:
            p.send_signal(signal.SIGINT)
    deadline = time.monotonic() + 60
    for p in procs:
        try:
            p.wait(timeout=max(1.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            p.kill()


def _exit(code: int) -> str:
    return f"signal {-code}" if code < 0 else f"code {code}"


def _write_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)
