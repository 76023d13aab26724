"""Sweeps that survive signals, restarts and dead workers; failures that are one line; no secret printed.

Each test runs the toolkit as a user does (``python -m lightning_attn …`` in a subprocess) and checks the
outcome through Optuna's and MLflow's own clients.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from mlflow import MlflowClient
from optuna.trial import TrialState

from ..helpers import TINY
from ..servers import answers, free_port, parent_pid
from ..servers import wait_until as wait_for
from .test_sweep_runs import mlflow_runs, studies, sweep, sweep_file

pytestmark = pytest.mark.e2e  # sweeps, servers, browsers, DDP, wheels: the CI suite


LONG = ["early_stopping.enabled=false", "trainer.max_epochs=12"]  # trials of a few seconds: time to interrupt
BODY = (
    "mechanisms: {soft: {}}\n"
    "space: {task.lr: {type: float, low: 1.0e-3, high: 1.0e-2, log: true}}\n"
    "n_trials: 4\nheartbeat_interval: 1\ngrace_period: 3\npruner: {kind: none}\n"
)


def trials_of(name: str, study: str):
    if not Path(f"outputs/sweeps/{name}/optuna.journal").exists():
        return []
    found = studies(name).get(study)
    return found.get_trials() if found else []


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie is gone for every purpose but its exit status
    status = Path(f"/proc/{pid}/status")
    return not (status.exists() and "State:\tZ" in status.read_text())


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_stops_everything_and_resume_continues_the_search_without_replaying_it(sig):
    name = f"stop{int(sig)}"
    path = sweep_file(name, BODY)
    args = [str(path), "--devices", "cpu:2", *LONG]
    launcher = sweep(*args, wait=False)

    def two_running_one_done():
        trials = trials_of(name, f"{name}-soft")
        running = [t for t in trials if t.state == TrialState.RUNNING]
        # a trial is RUNNING a moment before its worker records where it runs: wait for both pids
        started = len(running) == 2 and all("pid" in t.user_attrs for t in running)
        return trials if started and any(t.state == TrialState.COMPLETE for t in trials) else None

    running = [t for t in wait_for(two_running_one_done) if t.state == TrialState.RUNNING]
    worker_pids = {t.user_attrs["pid"] for t in running}
    launcher.send_signal(sig)
    out, _ = launcher.communicate(timeout=90)
    assert launcher.returncode == 128 + sig, out[-2000:]
    assert f"{signal.Signals(sig).name} received" in out and "--resume" in out
    assert not [pid for pid in worker_pids if alive(pid)], "orphan workers"
    _, parents, children = mlflow_runs(name)
    assert not [r for r in children + list(parents.values()) if r.info.status == "RUNNING"]
    assert parents[f"{name}-soft"].info.status == "KILLED"
    after = {t.number: t for t in trials_of(name, f"{name}-soft")}
    interrupted = [t for t in after.values() if t.state == TrialState.FAIL]
    # a worker stops at its next safe point: its trial is interrupted (retried on --resume), or complete if the
    # signal came after its last batch; the trial that had just started is interrupted
    assert all(after[t.number].state in (TrialState.FAIL, TrialState.COMPLETE) for t in running)
    assert interrupted and all(t.user_attrs["stale"] for t in interrupted)
    assert {t.number for t in interrupted} <= {t.number for t in running}
    if sig == signal.SIGINT:
        return  # what --resume makes of an interrupted sweep does not depend on the signal: checked once, below

    proc = sweep(*args, "--resume")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    trials = trials_of(name, f"{name}-soft")
    assert [t.state for t in trials].count(TrialState.COMPLETE) == 4  # the budget, exactly
    retries = [t for t in trials if "retry_of" in t.user_attrs]
    assert sorted(t.user_attrs["retry_of"] for t in retries) == sorted(t.number for t in interrupted)
    # every other trial is a fresh start-up draw: the resumed launch did not replay the first one's
    proposed = [t.params["task.lr"] for t in trials if "retry_of" not in t.user_attrs]
    assert len(proposed) == len(set(proposed)) >= 4
    _, parents, children = mlflow_runs(name)
    assert parents[f"{name}-soft"].info.status == "FINISHED"
    assert not [r for r in children if r.info.status == "RUNNING"]


def test_a_running_sweep_cannot_be_launched_twice_and_a_stale_lock_is_taken_over():
    path = sweep_file("twice", BODY.replace("n_trials: 4", "n_trials: 1"))
    args = [str(path), "--devices", "cpu:1", *LONG]
    first = sweep(*args, wait=False)
    trial = wait_for(lambda: [t for t in trials_of("twice", "twice-soft") if "pid" in t.user_attrs])[0]
    # frozen, the first launch still holds its lock but cannot finish its budget before the checks below
    os.kill(trial.user_attrs["pid"], signal.SIGSTOP)
    os.kill(first.pid, signal.SIGSTOP)
    for extra in ([], ["--resume"]):
        again = sweep(*args, *extra)
        assert again.returncode == 2, again.stdout[-2000:] + again.stderr[-2000:]
        line = again.stderr.strip()
        assert line.count("\n") == 0 and f"sweep 'twice' is running: launcher PID {first.pid}" in line
    # kill -9 the whole first launch: its lock is stale now, and --resume takes over
    os.kill(first.pid, signal.SIGKILL)
    os.kill(trial.user_attrs["pid"], signal.SIGKILL)
    first.wait(timeout=30)
    proc = sweep(*args, "--resume")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    trials = trials_of("twice", "twice-soft")
    assert [t.state for t in trials].count(TrialState.COMPLETE) == 1
    # a --resume with nothing left to do reports no rate made of earlier launches' trials
    idle = sweep(*args, "--resume")
    assert idle.returncode == 0 and "0 trial(s) finished in this launch" in idle.stdout
    assert "trials/hour" not in idle.stdout


def test_a_worker_killed_mid_trial_is_replaced_and_the_sweep_finishes():
    path = sweep_file("replace", BODY)
    launcher = sweep(str(path), "--devices", "cpu:2", *LONG, wait=False)
    victim = wait_for(lambda: [t for t in trials_of("replace", "replace-soft") if "pid" in t.user_attrs])[0]
    os.kill(victim.user_attrs["pid"], signal.SIGKILL)
    out, _ = launcher.communicate(timeout=300)
    assert launcher.returncode == 0, out[-3000:]
    assert "exited with signal 9 (SIGKILL); started worker 2 in its place" in out
    trials = trials_of("replace", "replace-soft")
    killed = next(t for t in trials if t.number == victim.number)
    assert killed.state == TrialState.FAIL and killed.user_attrs["stale"]
    assert "for more than 3 s" in killed.user_attrs["failure_reason"]  # the configured grace period
    assert [t.state for t in trials].count(TrialState.COMPLETE) == 4
    # the replacement joined the sweep: it takes a trial unless worker 0 spent the budget while it started up
    replacement = Path("outputs/sweeps/replace/logs/worker-2.log").read_text()
    assert "Traceback" not in replacement
    assert all(t.state == TrialState.COMPLETE for t in trials if t.user_attrs.get("worker") == 2)
    client, parents, children = mlflow_runs("replace")
    assert parents["replace-soft"].info.status == "FINISHED"
    run = next(r for r in children if r.data.tags["optuna.trial"] == str(killed.number))
    assert run.info.status == "FAILED" and "for more than 3 s" in run.data.tags["failure_reason"]


def test_a_dead_ddp_rank_ends_its_group_within_seconds_and_the_trial_fails_with_the_reason():
    path = sweep_file("rank", BODY.replace("n_trials: 4", "n_trials: 2"))
    launcher = sweep(str(path), "--ddp", "--devices", "cpu:2", *LONG, wait=False)
    trial = wait_for(lambda: [t for t in trials_of("rank", "rank-soft") if "pid" in t.user_attrs])[0]
    rank0 = trial.user_attrs["pid"]
    ranks = [
        int(p.name) for p in Path("/proc").iterdir() if p.name.isdigit() and parent_pid(int(p.name)) == launcher.pid
    ]
    rank1 = next(pid for pid in ranks if pid != rank0)
    os.kill(rank1, signal.SIGKILL)
    # the launcher stops the group: rank 0 does not wait for its collective's 10-minute timeout (a bound far below
    # it, not a timing: the launcher's line below says why rank 0 ended)
    wait_for(lambda: not alive(rank0), timeout=240)
    out, _ = launcher.communicate(timeout=300)
    assert launcher.returncode == 0, out[-3000:]
    assert "rank 1 exited with signal 9 (SIGKILL); stopping its other ranks" in out
    trials = trials_of("rank", "rank-soft")
    failed = next(t for t in trials if t.number == trial.number)
    assert failed.state == TrialState.FAIL and failed.user_attrs["stale"]
    assert failed.user_attrs["failure_reason"] == "DDP rank 1 of 2 exited with signal 9 (SIGKILL)"
    retry = next(t for t in trials if t.user_attrs.get("retry_of") == trial.number)
    assert retry.state == TrialState.COMPLETE and [t.state for t in trials].count(TrialState.COMPLETE) == 2
    _, _, children = mlflow_runs("rank")
    run = next(r for r in children if r.data.tags["optuna.trial"] == str(trial.number))
    assert run.info.status == "FAILED" and "DDP rank 1 of 2 exited" in run.data.tags["failure_reason"]


@pytest.mark.skipif(
    subprocess.run([sys.executable, "-c", "import torch, sys; sys.exit(torch.cuda.is_available())"]).returncode,
    reason="this machine has a GPU",
)
@pytest.mark.parametrize(
    "command",
    [["sweep", "SMOKE", "--devices", "7"], ["train", "trainer=gpu"], ["train", "trainer.accelerator=gpu"]],
)
def test_a_device_this_machine_does_not_have_is_one_line_and_writes_nothing(command):
    from lightning_attn.resources import sweeps_dir

    command = [str(sweeps_dir() / "smoke.yaml") if c == "SMOKE" else c for c in command]
    proc = subprocess.run([sys.executable, "-m", "lightning_attn", *command], capture_output=True, text=True)
    assert proc.returncode == 2 and proc.stderr.startswith("error: ") and proc.stderr.count("\n") == 1, proc.stderr
    assert "GPU" in proc.stderr
    assert list(Path.cwd().iterdir()) == []  # no outputs/, no mlflow.db, no MLflow run


PASSWORD = "s3cretPW"


def test_unreachable_servers_are_one_line_with_the_password_masked():
    port = free_port()  # nothing listens there
    postgres = f"postgresql://optuna:{PASSWORD}@127.0.0.1:{port}/sweeps"
    path = sweep_file("gone", BODY)
    proc = sweep(str(path), "--storage", postgres, "--devices", "cpu:1")
    assert proc.returncode == 3 and proc.stderr.count("\n") == 1, proc.stderr
    assert "cannot reach the Optuna storage postgresql://optuna:***@127.0.0.1" in proc.stderr
    http = f"http://user:{PASSWORD}@127.0.0.1:{port}"
    env = {**os.environ, "MLFLOW_TRACKING_URI": http}
    train = subprocess.run(
        [sys.executable, "-m", "lightning_attn", "train", *TINY], capture_output=True, text=True, env=env
    )
    assert train.returncode == 3 and train.stderr.count("\n") == 1, train.stderr
    assert "cannot reach the MLflow tracking server http://user:***@127.0.0.1" in train.stderr
    for text in (proc.stdout, proc.stderr, train.stdout, train.stderr):
        assert PASSWORD not in text
    assert not Path("mlflow.db").exists() and not Path("outputs").exists()  # checked before anything was written


@pytest.fixture
def mlflow_server(tmp_path):
    """A real ``mlflow server`` on loopback with a SQLite backend and its own artifact root."""
    port = free_port()
    cmd = [
        sys.executable,
        "-m",
        "mlflow",
        "server",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--backend-store-uri",
        f"sqlite:///{tmp_path / 'server.db'}",
        "--artifacts-destination",
        str(tmp_path / "artifacts"),
    ]
    server = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        wait_for(lambda: answers(f"http://127.0.0.1:{port}/health"), timeout=120)
        yield port
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)


def test_no_password_in_anything_a_run_or_a_sweep_against_a_server_prints_logs_or_records(mlflow_server, tmp_path):
    uri = f"http://user:{PASSWORD}@127.0.0.1:{mlflow_server}"
    env = {**os.environ, "MLFLOW_TRACKING_URI": uri}
    train = subprocess.run(
        [sys.executable, "-m", "lightning_attn", "train", *TINY, "logger.experiment_name=secret"],
        capture_output=True,
        text=True,
        env=env,
    )
    assert train.returncode == 0, train.stderr[-3000:]
    path = sweep_file("secretsweep", BODY.replace("n_trials: 4", "n_trials: 1"))
    swept = subprocess.run(
        [sys.executable, "-m", "lightning_attn", "sweep", str(path), "--devices", "cpu:1", "trainer.max_epochs=1"],
        capture_output=True,
        text=True,
        env=env,
    )
    assert swept.returncode == 0, swept.stdout[-3000:] + swept.stderr[-3000:]
    assert "View run" in train.stdout + train.stderr  # MLflow did print its run links: masked
    for text in (train.stdout, train.stderr, swept.stdout, swept.stderr):
        assert PASSWORD not in text
    for file in Path.cwd().rglob("*"):  # worker logs, checkpoints, the sweep file copy, …
        if file.is_file():
            assert PASSWORD.encode() not in file.read_bytes(), file
    client = MlflowClient(f"http://127.0.0.1:{mlflow_server}")
    runs = client.search_runs([e.experiment_id for e in client.search_experiments()])
    assert len(runs) >= 3  # the train run, the sweep's parent run and its trial
    download = tmp_path / "download"
    for run in runs:
        assert PASSWORD not in str(run.data.params) + str(run.data.tags)
        target = download / run.info.run_id
        target.mkdir(parents=True)
        client.download_artifacts(run.info.run_id, "", str(target))
    for file in download.rglob("*"):
        if file.is_file():
            assert PASSWORD.encode() not in file.read_bytes(), file


def test_ui_killed_by_pid_leaves_nothing_answering(tmp_path):
    port = free_port()
    ui = subprocess.Popen(
        [sys.executable, "-m", "lightning_attn", "ui", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for(lambda: answers(f"http://127.0.0.1:{port}/health"), timeout=120, every=1)
    finally:
        ui.send_signal(signal.SIGTERM)  # `kill PID`, as a script or a service manager does
    ui.wait(timeout=30)
    wait_for(lambda: not answers(f"http://127.0.0.1:{port}/health"), timeout=30, every=1)
    with socket.socket() as s:  # nothing listens there any more: no server process is left holding it
        # SO_REUSEADDR: the health checks' closed connections may sit in TIME_WAIT; a listener would still refuse
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", port))


def test_a_report_over_failed_runs_lists_the_failures():
    from lightning_attn.cli import main

    assert main(["train", *TINY, "task.lr=1e30", "logger.experiment_name=doomed"]) != 0  # diverges: FAILED
    assert main(["report", "--experiment", "doomed", "--out", "report"]) == 1
    html, md = Path("report/report.html").read_text(), Path("report/report.md").read_text()
    assert "Failed runs" in html and "diverged" in html and "## Failed runs" in md and "diverged" in md
