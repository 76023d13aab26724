"""A mechanism defined outside the package trains, sweeps and reports like a shipped one, with its own loss
term and metric, without any file of the package knowing it (it comes in as a plugin)."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import pytest
from mlflow import MlflowClient

from lightning_attn.attention import MECHANISMS
from lightning_attn.config import compose
from lightning_attn.train import train

from ..helpers import TINY, tiny

REPO = Path(__file__).resolve().parents[2]
PLUGIN = "tests.extension.leaky"


@pytest.fixture
def leaky():
    import importlib

    plugin = importlib.import_module(PLUGIN)  # registers itself when first imported, as a plugin does
    MECHANISMS["leaky"] = (plugin.LeakyAttention, plugin.LeakyAttentionConfig)  # (again, if popped before)
    yield
    MECHANISMS.pop("leaky")  # the other tests see the shipped registry only


def _metrics(run_id: str) -> dict[str, float]:
    return MlflowClient(f"sqlite:///{Path.cwd() / 'mlflow.db'}").get_run(run_id).data.metrics


@pytest.mark.e2e
def test_a_mechanism_of_your_own_trains_sweeps_and_reports(leaky):
    # 1. train (in this process, where the plugin is imported)
    result = train(compose(tiny(mechanism="leaky")))
    metrics = _metrics(result.run_id)
    assert metrics["train/sharpness_epoch"] > 0 and metrics["stability/leak_entropy"] > 0
    # 2. a one-trial sweep: the launcher and its workers import the plugin from the environment
    env = {**os.environ, "LIGHTNING_ATTN_PLUGINS": PLUGIN, "PYTHONPATH": str(REPO)}
    run_keys = ", ".join(o for o in TINY if not o.startswith("attention."))
    Path("own.yaml").write_text(f"name: own\ntask: translation\noverrides: [{run_keys}]\n"
                                "mechanisms: {leaky: {}}\nn_trials: 1\n")  # fmt: skip
    proc = subprocess.run([sys.executable, "-m", "lightning_attn", "sweep", "own.yaml", "--devices", "cpu:1"],
                          env=env, capture_output=True, text=True, timeout=300)  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    client = MlflowClient(f"sqlite:///{Path.cwd() / 'mlflow.db'}")
    runs = client.search_runs([client.get_experiment_by_name("own").experiment_id])
    trial = next(r for r in runs if r.data.tags.get("optuna.trial") == "0")
    assert trial.info.status == "FINISHED" and trial.data.tags["attention"] == "leaky"
    assert "stability/leak_entropy" in trial.data.metrics and "train/sharpness_epoch" in trial.data.metrics
    # 3. the report compares it like any other mechanism
    report = subprocess.run([sys.executable, "-m", "lightning_attn", "report", "--experiment", "own", "--out", "r"],
                            env=env, capture_output=True, text=True, timeout=300)  # fmt: skip
    assert report.returncode == 0, report.stderr[-3000:]
    rows = list(csv.DictReader(Path("r/report.csv").read_text().splitlines()))
    assert [r["mechanism"] for r in rows] == ["leaky"]


def test_a_plugin_that_cannot_be_imported_is_one_line():
    env = {**os.environ, "LIGHTNING_ATTN_PLUGINS": "no_such_plugin_module"}
    proc = subprocess.run([sys.executable, "-m", "lightning_attn", "config"], env=env, capture_output=True, text=True)
    assert proc.returncode == 2 and "cannot import plugin 'no_such_plugin_module'" in proc.stderr
