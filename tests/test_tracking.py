from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from lightning_attn.tracking import mask_secrets, resolve_tracking_uri
from lightning_attn.tracking.mlflow import default_artifact_location, sqlite_file


def test_default_tracking_uri_is_sqlite_in_cwd():
    assert resolve_tracking_uri() == f"sqlite:///{Path.cwd() / 'mlflow.db'}"


def test_env_tracking_uri_wins(monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:5000")
    assert resolve_tracking_uri() == "http://127.0.0.1:5000"
    assert resolve_tracking_uri("sqlite:///x.db") == "sqlite:///x.db"


def test_mask_secrets():
    text = "postgresql://alice:s3cr%40t@db:5432/optuna and http://u:p@h/x but not http://h/x"
    masked = mask_secrets(text)
    assert "s3cr" not in masked and ":p@" not in masked
    assert "postgresql://alice:***@db:5432/optuna" in masked and "http://h/x" in masked


def test_artifacts_go_beside_the_sqlite_db(tmp_path):
    location = default_artifact_location(f"sqlite:///{tmp_path}/mlflow.db", "my exp")
    assert location == (Path(tmp_path) / "mlartifacts" / "my_exp").as_uri()
    assert default_artifact_location("http://127.0.0.1:5000", "x") is None


def test_sqlite_file_of_uris(tmp_path):
    assert sqlite_file(f"sqlite:///{tmp_path}/a.db") == tmp_path / "a.db"  # absolute: sqlite:////abs
    assert sqlite_file("sqlite:///rel/a.db") == Path("rel/a.db")  # relative to the working directory, as SQLAlchemy
    assert sqlite_file("sqlite:///:memory:") is None
    assert sqlite_file("postgresql://u@h/db") is None


# Each process imports, says so, waits for the word to go, then opens the fresh store and creates the experiment.
_RACE = """
import sys
from lightning_attn.tracking import ensure_experiment
print("ready", flush=True)
sys.stdin.readline()
print(ensure_experiment(sys.argv[1], "raced"))
"""


def test_processes_starting_at_once_share_a_fresh_sqlite_store(tmp_path):
    # MLflow creates a new SQLite file's tables unlocked: without store_creation_lock one of these
    # dies with "table experiments already exists" (seen with two `lightning-attn train` at once)
    uri = f"sqlite:///{tmp_path}/fresh.db"
    command = [sys.executable, "-c", _RACE, uri]
    procs = [
        subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(3)
    ]
    assert [p.stdout.readline().strip() for p in procs] == ["ready"] * 3  # every interpreter has imported MLflow
    for p in procs:
        p.stdin.write("go\n")
        p.stdin.flush()
    results = [(p.wait(timeout=120), p.stdout.read().strip(), p.stderr.read()) for p in procs]
    assert [rc for rc, _, _ in results] == [0, 0, 0], [err[-500:] for _, _, err in results]
    assert len({out for _, out, _ in results}) == 1  # one experiment, the same id for all
    assert [p.name for p in tmp_path.iterdir() if p.is_file()] == ["fresh.db"]  # the lock leaves no file behind


def test_a_store_another_mlflow_release_wrote_is_one_line_and_left_as_it_was(tmp_path):
    import shutil
    import sqlite3

    import pytest
    from mlflow import MlflowClient

    from lightning_attn.tracking import TrackingUnavailable, check_tracking_store

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    MlflowClient(uri).search_experiments()  # a store this MLflow made: it opens
    check_tracking_store(uri)
    newer = tmp_path / "newer.db"  # another file: MLflow keeps the store it opened for each URI
    shutil.copy(tmp_path / "mlflow.db", newer)
    with sqlite3.connect(newer) as db:  # as another release leaves it
        db.execute("UPDATE alembic_version SET version_num = '0123456789ab'")  # no release's
    before = newer.read_bytes()
    with pytest.raises(TrackingUnavailable) as caught:
        check_tracking_store(f"sqlite:///{newer}")
    message = str(caught.value)
    assert "\n" not in message and message.startswith("cannot open the MLflow tracking store sqlite:///")
    assert "database schema (found version 0123456789ab" in message and "written by another MLflow release" in message
    assert newer.read_bytes() == before
