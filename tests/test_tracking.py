from __future__ import annotations

from pathlib import Path

from lightning_attn.tracking import mask_secrets, resolve_tracking_uri
from lightning_attn.tracking.mlflow import default_artifact_location


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
