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


def pytest_configure(config):
    """Under pytest-xdist each test process gets one core: two processes of torch's two threads each would wait
    on each other at every parallel region (the fast suite takes 100 s so on two cores, 200 s without)."""
    if os.environ.get("PYTEST_XDIST_WORKER"):
        import torch

        torch.set_num_threads(1)


#: the end-to-end files that take longest, longest first (about 410, 410, 150, 90, 90, 85, 80 s on two CPU cores).
#: The end-to-end suite runs a file at a time on two workers, handed out in collection order: started first, the
#: long files cannot leave one worker running alone at the end.
LONGEST_FIRST = [
    "sweep/test_sweep_runs.py",
    "sweep/test_faults.py",
    "sweep/test_hosts.py",
    "sweep/test_slurm.py",
    "test_server_hosts.py",
    "report/test_report.py",
    "test_mlflow_ui.py",
]


def pytest_collection_modifyitems(config, items):
    here = Path(__file__).resolve().parent

    def rank(item) -> int:
        name = item.path.resolve().relative_to(here).as_posix()
        return LONGEST_FIRST.index(name) if name in LONGEST_FIRST else len(LONGEST_FIRST)

    items.sort(key=rank)  # stable: every file keeps its tests' order, the rest their collection order
