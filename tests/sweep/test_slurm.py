"""``lightning-attn sweep FILE --slurm``: the hosts of a sweep as a job array, through submitit.

No Slurm here: the array runs through submitit's local executor (``--slurm-executor local``), which runs the
same pickled tasks, sends the same preemption signal and requeues the same way; what only a real cluster
can show (sbatch's options, several nodes) is listed as not run in docs/distributed.md.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest
from mlflow import MlflowClient
from optuna.trial import TrialState

from lightning_attn.cli import main
from lightning_attn.sweep.slurm import HostTask

from ..servers import parent_pid
from ..servers import wait_until as wait_for
from .test_sweep_runs import child_of, mlflow_runs, studies, sweep, sweep_file

BODY = (
    "mechanisms: {soft: {}}\n"
    "space: {task.lr: {type: float, low: 1.0e-3, high: 1.0e-2, log: true}}\n"
    "n_trials: 4\nheartbeat_interval: 1\ngrace_period: 3\npruner: {kind: none}\n"
)


@pytest.mark.parametrize(
    "args, says",
    [
        (["--array", "2"], "--array: options of a Slurm submission; add --slurm"),
        (["--slurm"], "--slurm needs --timeout-min MINUTES"),
        (["--slurm", "--timeout-min", "5", "--array", "0"], "--array 0: give the number of tasks"),
        (["--slurm", "--timeout-min", "5", "--join"], "--slurm submits every host of the sweep: drop --join"),
        (["--slurm", "--timeout-min", "5", "--storage", "sqlite:///x.db"], "SQLite cannot be shared"),
        (["--slurm", "--timeout-min", "5", "--slurm-param", "account"], "write an sbatch option as KEY=VALUE"),
        (["--slurm", "--timeout-min", "5"], 'Could not detect "srun"'),  # no Slurm on this machine
    ],
)
def test_a_submission_that_cannot_go_is_one_line_and_writes_nothing(args, says, capsys):
    path = sweep_file("refused", BODY)
    assert main(["sweep", str(path), *args]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and says in err, err
    assert not Path("outputs/sweeps/refused/optuna.journal").exists() and not Path("mlflow.db").exists()


def test_a_host_task_runs_the_sweep_joined_in_its_own_folder_and_pickles_no_storage(tmp_path):
    import pickle

    task = HostTask(tmp_path / "sweep.yaml", tmp_path, "0,1", True, tmp_path)
    command = task.command(3)
    assert command[3:] == [
        "sweep",
        str(tmp_path / "sweep.yaml"),
        "--join",
        "--out",
        str(tmp_path / "hosts" / "3"),
        "--devices",
        "0,1",
        "--ddp",
    ]
    assert not [c for c in command if "storage" in c]  # the URL comes in the environment
    assert set(pickle.loads(pickle.dumps(task)).__dict__) == {"spec_file", "folder", "devices", "ddp", "cwd", "_child"}


@pytest.mark.e2e
def test_a_two_task_array_spends_the_budget_exactly_and_a_preempted_task_is_requeued_and_rejoins():
    path = sweep_file("array", BODY.replace("n_trials: 4", "n_trials: 3"))
    args = [
        str(path),
        "--slurm",
        "--slurm-executor",
        "local",
        "--array",
        "2",
        "--timeout-min",
        "30",
        "--devices",
        "cpu:1",
        "trainer.max_epochs=4",
        "early_stopping.enabled=false",
    ]
    submitter = sweep(*args, wait=False)
    client = MlflowClient(f"sqlite:///{Path.cwd() / 'mlflow.db'}")
    host1 = str(Path("outputs/sweeps/array/hosts/1").resolve())

    def running_on_host1():
        if not Path("outputs/sweeps/array/optuna.journal").exists():
            return None
        found = studies("array").get("array-soft")
        for t in found.get_trials() if found else []:
            on_host1 = t.state == TrialState.RUNNING and t.user_attrs.get("folder", "").startswith(host1)
            if on_host1 and len(client.get_metric_history(t.user_attrs["mlflow_run_id"], "val/bleu")) >= 1:
                return t
        return None

    victim = wait_for(running_on_host1, timeout=300)
    launcher = int(
        next(
            p.name
            for p in Path("/proc").iterdir()
            if p.name.isdigit() and host1 in (p / "cmdline").read_bytes().decode(errors="replace")
        )
    )
    task = parent_pid(launcher)
    # a preemption, as Slurm signals it: USR2 to every process of the step (the launcher and its worker too)
    for pid in (task, launcher, victim.user_attrs["pid"]):
        os.kill(pid, signal.SIGUSR2)
    out, _ = submitter.communicate(timeout=600)
    assert submitter.returncode == 0, out[-4000:]
    assert "task 0: done" in out and "task 1: done" in out

    trials = studies("array")["array-soft"].get_trials()
    assert [t.state for t in trials].count(TrialState.COMPLETE) == 3  # the budget, exactly, across both hosts
    interrupted = next(t for t in trials if t.number == victim.number)
    assert interrupted.state == TrialState.FAIL and interrupted.user_attrs["stale"]
    assert "interrupted" in interrupted.user_attrs["failure_reason"]
    (retry,) = [t for t in trials if t.user_attrs.get("retry_of") == victim.number]
    assert retry.state == TrialState.COMPLETE
    assert {Path(t.user_attrs["folder"]).parents[2].name for t in trials} == {"0", "1"}  # both tasks trained
    logs = sorted(Path("outputs/sweeps/array/slurm").glob("*_log.*"))
    requeued = [log.read_text() for log in logs if "Requeued" in log.read_text()]
    assert len(requeued) == 1, "task 1 was not requeued"
    assert requeued[0].count("sweep array (launch") == 2  # its launcher joined again after the requeue
    # the retry continued the interrupted attempt from its last checkpoint (read from task 1's folder)
    _, parents, children = mlflow_runs("array")
    again = child_of(children, "array-soft", retry.number)
    assert f"continues trial #{victim.number}" in again.data.tags["resumed"]
    assert parents["array-soft"].info.status == "FINISHED"
    assert not [r for r in children if r.info.status == "RUNNING"]
    # what submitit keeps on disk names no storage (the URL travels in the environment)
    for pickled in Path("outputs/sweeps/array/slurm").glob("*.pkl"):
        assert b"optuna.journal" not in pickled.read_bytes()


def test_sweep_reads_its_storage_from_the_environment(monkeypatch, capsys):
    path = sweep_file("fromenv", BODY)
    monkeypatch.setenv("LIGHTNING_ATTN_SWEEP_STORAGE", "postgresql://lab:planted-secret@127.0.0.1:1/optuna")
    assert main(["sweep", str(path)]) == 3
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "127.0.0.1:1" in err and "planted-secret" not in err
