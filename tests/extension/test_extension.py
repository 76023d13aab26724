"""A mechanism and a task defined outside the package train, sweep and report like shipped ones — the mechanism
with its own loss term and metric, the task with its own data source and metric — without any file of the
package knowing them (they come in as plugins)."""

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
from lightning_attn.registry import Registry, RegistryError
from lightning_attn.train import train

from ..helpers import tiny

REPO = Path(__file__).resolve().parents[2]
PLUGIN = "tests.extension.leaky"


@pytest.fixture
def leaky():
    import importlib

    plugin = importlib.import_module(PLUGIN)  # registers itself when first imported, as a plugin does
    MECHANISMS.register("leaky", (plugin.LeakyAttention, plugin.LeakyAttentionConfig))  # (again, if removed before)
    yield
    MECHANISMS.unregister("leaky")  # the other tests see the shipped registry only


def _metrics(run_id: str) -> dict[str, float]:
    return MlflowClient(f"sqlite:///{Path.cwd() / 'mlflow.db'}").get_run(run_id).data.metrics


@pytest.fixture
def sorting():
    import importlib

    from lightning_attn.data import DATA
    from lightning_attn.tasks import TASKS

    plugin = importlib.import_module(SORTING)  # registers its task and data source when first imported
    TASKS.register("sorting", plugin.SortingTask)  # (again, if removed before)
    DATA.register("sorting", plugin.SortingSource)
    yield
    TASKS.unregister("sorting")
    DATA.unregister("sorting")


SORTING = "tests.extension.sorting"
SMALL_SORT = [
    "data.n_train=256",
    "data.n_val=32",
    "data.n_test=32",
    "model.embed_dim=16",
    "model.encoder_hidden=16",
    "model.decoder_hidden=32",
    "trainer.enable_progress_bar=false",
]


@pytest.mark.e2e
def test_a_mechanism_and_a_task_of_your_own_train_sweep_and_report(leaky, sorting):
    # 1. train (in this process, where the plugins are imported): the mechanism, with its own loss term and metric
    metrics = _metrics(train(compose(tiny(mechanism="leaky"))).run_id)
    assert metrics["train/sharpness_epoch"] > 0 and metrics["stability/leak_entropy"] > 0
    # the same module in a Transformer's cross- and self-attention: read() serves one query and many
    small = ["model.width=16", "model.heads=2", "model.ffn=32", "model.encoder_layers=1", "model.decoder_layers=1"]
    overrides = [o for o in tiny(mechanism="leaky") if not o.startswith("model.")]
    transformer = train(compose([*overrides, "model=transformer", *small, "attention.where=both"]))
    assert _metrics(transformer.run_id)["stability/leak_entropy"] > 0
    # the task: its own data source, model choice, metric, monitor and checkpoints
    result = train(compose(["task=sorting", *SMALL_SORT, "trainer.max_epochs=2", "early_stopping.enabled=false"]))
    run = MlflowClient(result.tracking_uri).get_run(result.run_id)
    assert run.data.tags["task"] == "sorting" and run.data.tags["metric.headline"] == "test/accuracy"
    assert {"val/accuracy", "test/accuracy", "test/align_acc"} <= set(run.data.metrics)
    assert result.best_checkpoint and Path(result.best_checkpoint).is_file()
    # 2. a sweep of both on the task: the launcher and its workers import the plugins from the environment
    env = {**os.environ, "LIGHTNING_ATTN_PLUGINS": f"{PLUGIN},{SORTING}", "PYTHONPATH": str(REPO)}
    space = "space: {task.lr: {type: float, low: 1.0e-3, high: 1.0e-2}}"
    Path("own.yaml").write_text(
        f"name: own\ntask: sorting\noverrides: [{', '.join(SMALL_SORT)}, "
        f"trainer.max_epochs=2]\nmechanisms: {{leaky: {{}}, soft: {{}}}}\n{space}\n"
        "n_trials: 1\n"
    )
    proc = subprocess.run(
        [sys.executable, "-m", "lightning_attn", "sweep", "own.yaml", "--devices", "cpu:1"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    client = MlflowClient(f"sqlite:///{Path.cwd() / 'mlflow.db'}")
    runs = client.search_runs([client.get_experiment_by_name("own").experiment_id])
    trial = next(r for r in runs if "optuna.trial" in r.data.tags and r.data.tags["attention"] == "leaky")
    assert trial.info.status == "FINISHED" and trial.data.tags["task"] == "sorting"
    assert "stability/leak_entropy" in trial.data.metrics and "test/accuracy" in trial.data.metrics
    # 3. the report compares them like shipped ones, by the task's own headline metric
    report = subprocess.run(
        [sys.executable, "-m", "lightning_attn", "report", "--experiment", "own", "--out", "r"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert report.returncode == 0, report.stderr[-3000:]
    rows = list(csv.DictReader(Path("r/report.csv").read_text().splitlines()))
    assert sorted(r["mechanism"] for r in rows) == ["leaky", "soft"]
    assert "test/accuracy" in Path("r/report.md").read_text()


def test_a_plugin_that_cannot_be_imported_is_one_line():
    env = {**os.environ, "LIGHTNING_ATTN_PLUGINS": "no_such_plugin_module"}
    proc = subprocess.run([sys.executable, "-m", "lightning_attn", "config"], env=env, capture_output=True, text=True)
    assert proc.returncode == 2 and "cannot import plugin 'no_such_plugin_module'" in proc.stderr


def test_a_plugin_taking_a_shipped_name_without_override_is_one_line_naming_both():
    env = {**os.environ, "LIGHTNING_ATTN_PLUGINS": "tests.extension.clash", "PYTHONPATH": str(REPO)}
    proc = subprocess.run([sys.executable, "-m", "lightning_attn", "config"], env=env, capture_output=True, text=True)
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.strip() == (
        "error: LIGHTNING_ATTN_PLUGINS: plugin 'tests.extension.clash': attention mechanism 'soft' is registered "
        "already by lightning_attn.attention.soft.SoftAttention; tests.extension.clash.MySoftAttention registers it "
        "again (register(..., override=True) replaces it)"
    )


def test_a_registry_is_added_to_only_through_register():
    registry = Registry("thing", {"a": int})
    assert registry.register("a", int) is int  # the same entry again (a module imported twice) is no clash
    with pytest.raises(RegistryError, match="^thing 'a' is registered already by builtins.int; builtins.float"):
        registry.register("a", float)
    assert registry["a"] is int
    assert registry.register("a", float, override=True) is float and registry["a"] is float
    with pytest.raises(TypeError):
        registry["b"] = str  # a plain assignment, as plugins used to write, is refused
    assert registry.unregister("a") is float and "a" not in registry and len(registry) == 0


def test_an_installed_distributions_entry_point_registers_its_task(tmp_path, monkeypatch):
    # what `pip install my-plugin` leaves: a dist-info whose entry point names the module to import
    info = tmp_path / "my_sorting-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: my-sorting\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(f"[lightning_attn.plugins]\nsorting = {SORTING}\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.syspath_prepend(str(REPO))
    monkeypatch.delitem(sys.modules, SORTING, raising=False)  # imported by an earlier test: it must register again
    from lightning_attn.config import group_choices
    from lightning_attn.data import DATA
    from lightning_attn.plugins import load_plugins
    from lightning_attn.tasks import TASKS

    try:
        assert SORTING in load_plugins()
        assert "sorting" in TASKS and "sorting" in DATA and "sorting" in group_choices("task")
        assert compose(["task=sorting"]).choices.data == "sorting"  # its own default data, no YAML needed
    finally:
        for registry in (TASKS, DATA):
            if "sorting" in registry:
                registry.unregister("sorting")
    (info / "entry_points.txt").write_text("[lightning_attn.plugins]\nbroken = no_such_module_here\n")
    with pytest.raises(Exception, match="entry point 'broken' .*cannot import plugin 'no_such_module_here'"):
        load_plugins()
