"""DDP on CPU (2 processes, gloo): one MLflow run, metrics synced, nothing left RUNNING."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from mlflow import MlflowClient

from .helpers import tiny

pytestmark = pytest.mark.e2e  # sweeps, servers, browsers, DDP, wheels: the CI suite


def test_ddp_on_two_cpu_processes_records_one_run():
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    args = tiny("trainer=ddp", "trainer.accelerator=cpu", "logger.experiment_name=ddp")
    proc = subprocess.run(
        [sys.executable, "-m", "lightning_attn", "train", *args], env=env, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    client = MlflowClient(f"sqlite:///{Path.cwd() / 'mlflow.db'}")
    runs = client.search_runs([client.get_experiment_by_name("ddp").experiment_id])
    assert len(runs) == 1  # rank 1 logs nothing of its own
    run = runs[0]
    assert run.info.status == "FINISHED"
    assert run.data.params["trainer.strategy"] == "ddp" and run.data.params["trainer.devices"] == "2"
    assert "test/bleu" in run.data.metrics and "val/bleu" in run.data.metrics
    # throughput is the job's: both ranks' 3 batches of 16 (each rank alone trained 48 samples)
    assert run.data.metrics["speed/train_samples"] == 2 * 3 * 16
    assert len(list((Path.cwd() / "outputs").rglob("best.ckpt"))) == 1  # written by rank 0 alone
    assert client.list_artifacts(run.info.run_id, "model")  # the run as an MLflow model (a copy of best.ckpt)
