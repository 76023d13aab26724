"""One sweep across hosts: a real PostgreSQL for Optuna, a real MLflow tracking server (PostgreSQL backend,
served artifacts) started by ``lightning-attn server``, and two ``lightning-attn sweep`` commands started
separately, as two hosts would. Everything is read back through Optuna's and MLflow's own clients.
"""

from __future__ import annotations

import functools
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import optuna
import pytest
from mlflow import MlflowClient
from optuna.trial import TrialState

from lightning_attn.tracking import database_url

from ..servers import (
    PASSWORD,
    parent_pid,
    start_mlflow_server,
    start_postgres,
    stop_mlflow_server,
    stop_postgres,
    wait_until,
)
from .test_sweep_runs import RUN, sweep_file

pytestmark = [pytest.mark.e2e, pytest.mark.servers]

REPO = Path(__file__).resolve().parents[2]
QUICK = ["early_stopping.enabled=false", "trainer.max_epochs=6"]  # trials of a few seconds
BODY = (
    "mechanisms: {soft: {}, hard: {}}\n"
    "space: {task.lr: {type: float, low: 1.0e-3, high: 1.0e-2, log: true}}\n"
    "n_trials: 3\nheartbeat_interval: 1\ngrace_period: 3\npruner: {kind: none}\n"
)


@pytest.fixture(scope="module")
def postgres():
    pg = start_postgres()
    yield pg
    stop_postgres(pg)


@pytest.fixture(scope="module")
def tracking_server(postgres, tmp_path_factory):
    """The team's MLflow server: runs in PostgreSQL (password from PGPASSWORD), artifacts through the server."""
    postgres.create_database("mlflow")
    folder = tmp_path_factory.mktemp("mlflow-server")
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"} | {"PGPASSWORD": PASSWORD}
    backend = postgres.url("mlflow", password=False)
    server = start_mlflow_server(backend, folder / "artifacts", folder / "server.log", env)
    yield server
    stop_mlflow_server(server)
    assert PASSWORD not in server.log.read_text()


def host(file: Path, storage: str, server: str, out: str, *extra: str, env: dict | None = None) -> subprocess.Popen:
    """``lightning-attn sweep`` as one host runs it: its own sweep folder, the shared database and server."""
    cmd = [
        sys.executable,
        "-m",
        "lightning_attn",
        "sweep",
        str(file),
        "--storage",
        storage,
        "--devices",
        "cpu:1",
        "--out",
        out,
        *QUICK,
        *extra,
    ]
    env = {**os.environ, **(env or {}), "MLFLOW_TRACKING_URI": server}
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)


@functools.cache
def _storage(url: str) -> optuna.storages.RDBStorage:
    """One connection pool per database: a poll is one query, not a new engine and schema check."""
    return optuna.storages.RDBStorage(database_url(url))


def trials_of(storage: str, study: str) -> list:
    rdb = _storage(storage)
    names = {s.study_name for s in rdb.get_all_studies()}
    return optuna.load_study(study_name=study, storage=rdb).get_trials() if study in names else []


def test_two_hosts_share_one_sweep_exactly_and_a_dead_hosts_trial_is_retried_on_the_other(postgres, tracking_server):
    storage = postgres.url(postgres.create_database("hosts"))
    file = sweep_file("hosts", BODY)
    first = host(file, storage, tracking_server.url, "host-a")
    wait_until(lambda: trials_of(storage, "hosts-soft") or first.poll() is not None, 180, what="the first trial")
    assert first.poll() is None, first.communicate()[0][-4000:]
    second = host(file, storage, tracking_server.url, "host-b", "--join")

    def running_on_second():
        return [
            t
            for t in trials_of(storage, "hosts-soft") + trials_of(storage, "hosts-hard")
            if t.state == TrialState.RUNNING and parent_pid(t.user_attrs.get("pid", -1)) == second.pid
        ]

    victim = wait_until(lambda: running_on_second() or second.poll() is not None, 240, what="a trial on host b")
    assert second.poll() is None, second.communicate()[0][-4000:]
    victim = victim[0]
    # the second host dies as a machine does: nothing of it gets to say goodbye
    os.kill(second.pid, signal.SIGSTOP)
    os.kill(victim.user_attrs["pid"], signal.SIGKILL)
    os.kill(second.pid, signal.SIGKILL)
    out_second = second.communicate(timeout=30)[0]
    # a host joining with a different budget is refused
    refused = host(file, storage, tracking_server.url, "host-c", "n_trials=5", "--join")
    refused_out = refused.communicate(timeout=120)[0]
    assert refused.returncode == 2 and "every host must run the same sweep file" in refused_out, refused_out
    out_first = first.communicate(timeout=600)[0]
    assert first.returncode == 0, out_first[-4000:]

    by_study = {name: trials_of(storage, name) for name in ("hosts-soft", "hosts-hard")}
    for name, trials in by_study.items():
        numbers = [t.number for t in trials]
        assert len(numbers) == len(set(numbers))
        assert [t.state for t in trials].count(TrialState.COMPLETE) == 3, (name, [t.state for t in trials])
        counted = [t for t in trials if not t.user_attrs.get("stale")]
        assert len(counted) == 3, f"{name} went over its budget: {[(t.number, t.state) for t in trials]}"
    study = next(name for name, trials in by_study.items() if any(t._trial_id == victim._trial_id for t in trials))
    killed = next(t for t in by_study[study] if t.number == victim.number)
    assert killed.state == TrialState.FAIL and killed.user_attrs["stale"]
    assert "stopped sending heartbeats for more than 3 s" in killed.user_attrs["failure_reason"]
    retry = next(t for t in by_study[study] if t.user_attrs.get("retry_of") == killed.number)
    assert retry.state == TrialState.COMPLETE and retry.params == killed.params
    assert parent_pid(retry.user_attrs["pid"]) != second.pid  # the first host ran it

    # MLflow, over HTTP, agrees with Optuna trial by trial
    client = MlflowClient(tracking_server.url)
    experiment = client.get_experiment_by_name("hosts")
    runs = client.search_runs([experiment.experiment_id], max_results=1000)
    tagged = [r for r in runs if "optuna.trial" in r.data.tags]
    children = {(r.data.tags["optuna.study"], r.data.tags["optuna.trial"]): r for r in tagged}
    for name, trials in by_study.items():
        for t in trials:
            run = children[(name, str(t.number))]
            assert run.info.run_id == t.user_attrs["mlflow_run_id"]
            expected = {TrialState.COMPLETE: "FINISHED", TrialState.FAIL: "FAILED"}[t.state]
            assert run.info.status == expected, (name, t.number, run.info.status)
    assert len(children) == sum(len(t) for t in by_study.values())
    parents = [r for r in runs if r.data.tags.get("lightning_attn.role") == "study"]
    assert len(parents) == 2 and {r.info.status for r in parents} == {"FINISHED"}

    # the report reads the sweep from the server
    report = subprocess.run(
        [
            sys.executable,
            "-m",
            "lightning_attn",
            "report",
            "--experiment",
            "hosts",
            "--tracking-uri",
            tracking_server.url,
            "--out",
            "report",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert report.returncode in (0, 1), report.stdout[-3000:] + report.stderr[-3000:]
    data = json.loads(Path("report/report.json").read_text())
    assert {"soft", "hard"} <= set(json.dumps(data).split('"')), "the report compares both mechanisms"

    # the planted password: in no output, file, param or tag
    for text in (out_first, out_second, refused_out, report.stdout, report.stderr):
        assert PASSWORD not in text
    for file in Path.cwd().rglob("*"):
        if file.is_file():
            assert PASSWORD.encode() not in file.read_bytes(), file
    for run in runs:
        assert PASSWORD not in json.dumps(run.data.params) + json.dumps(run.data.tags)


def test_a_trial_that_kills_its_worker_every_time_ends_failed_after_max_retries(postgres, tracking_server):
    storage = postgres.url(postgres.create_database("killer"))
    file = Path("killer.yaml")
    run_keys = ", ".join(o for o in RUN if not o.startswith("attention."))
    file.write_text(
        f"name: killer\ntask: translation\noverrides: [{run_keys}]\nmechanisms: {{killer: {{}}}}\n"
        "n_trials: 1\nmax_retries: 2\nworker_restarts: 5\n"
        "heartbeat_interval: 1\ngrace_period: 3\n"
    )
    plugin = {"LIGHTNING_ATTN_PLUGINS": "tests.extension.killer", "PYTHONPATH": str(REPO)}
    proc = host(file, storage, tracking_server.url, "host-a", env=plugin)
    out = proc.communicate(timeout=600)[0]
    # the budget is spent — the sweep is over, not stuck — and nothing completed: exit 1, the reason in one line
    assert proc.returncode == 1, out[-4000:]
    assert (
        out.strip()
        .splitlines()[-1]
        .startswith(
            "sweep failed: no trial completed (1 failed); the first, "
            "killer-killer-seeds #2: worker stopped sending heartbeats"
        )
    )
    trials = trials_of(storage, "killer-killer-seeds")  # no search space: a comparison, its seed runs alone
    assert [t.state for t in trials] == [TrialState.FAIL] * 3, [(t.number, t.state) for t in trials]
    assert [t.user_attrs.get("retry_of") for t in trials] == [None, 0, 1]
    assert [t.user_attrs["stale"] for t in trials] == [True, True, False]
    assert "not retried: already retried 2 time(s) (max_retries=2)" in trials[-1].user_attrs["failure_reason"]
    client = MlflowClient(tracking_server.url)
    runs = client.search_runs([client.get_experiment_by_name("killer").experiment_id])
    tagged = [r for r in runs if "optuna.trial" in r.data.tags]
    children = sorted(tagged, key=lambda r: int(r.data.tags["optuna.trial"]))
    assert [r.info.status for r in children] == ["FAILED"] * 3
    assert "max_retries=2" in children[-1].data.tags["failure_reason"]


def test_ui_on_a_tracking_server_points_at_the_server_itself(tracking_server):
    uri = tracking_server.url.replace("http://", f"http://lab:{PASSWORD}@")
    proc = subprocess.run(
        [sys.executable, "-m", "lightning_attn", "ui", "--tracking-uri", uri],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0 and "is its own UI" in proc.stdout, proc.stdout + proc.stderr
    assert "lab:***@127.0.0.1" in proc.stdout and PASSWORD not in proc.stdout + proc.stderr
