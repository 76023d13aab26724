from __future__ import annotations

import os
from pathlib import Path

import pytest

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture(autouse=True)
def _isolated_cwd(tmp_path, monkeypatch):
    """Every test runs in its own folder with no inherited tracking URI: nothing lands in the repo."""
    work = tmp_path / "cwd"
    work.mkdir()
    monkeypatch.chdir(work)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    yield
    # MLflow's set_tracking_uri (Lightning's logger calls it) exports the URI for subprocesses: a test
    # that trained in this process must not hand its store to the next test's subprocesses
    os.environ.pop("MLFLOW_TRACKING_URI", None)


@pytest.fixture
def multi30k() -> Path:
    root = SHARED_DATA / "multi30k"
    if not (root / "train.de.gz").is_file():
        pytest.skip(f"Multi30k not found at {root}")
    return root


os.environ.setdefault("PYTHONHASHSEED", "0")
