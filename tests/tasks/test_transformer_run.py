"""model=transformer on both tasks: every mechanism a Transformer takes trains, validates, tests and is recorded
with the default callbacks (sizes made small); the one it cannot take is refused before anything runs."""

from __future__ import annotations

import pytest
from mlflow import MlflowClient

from lightning_attn.attention import MECHANISMS
from lightning_attn.config import ConfigError, compose
from lightning_attn.tasks import TASKS
from lightning_attn.train import train

SMALL = [
    "model=transformer",
    "model.width=16",
    "model.heads=2",
    "model.ffn=32",
    "model.encoder_layers=1",
    "model.decoder_layers=2",
    "trainer.max_epochs=1",
    "trainer.limit_train_batches=2",
    "trainer.enable_progress_bar=false",
    "stability.estimator_samples=2",
    "stability.estimator_every=1",  # at every step: a stochastic mechanism's estimator variance within two steps
    # what this matrix isolates is each mechanism training in a Transformer: the timed calls and pictures every run
    # makes are the defaults matrix's (tests/test_defaults.py, both built-in sources with model=transformer)
    "speed.latency_calls_b1=0",
    "speed.latency_calls_batch=0",
    "task.attention_pictures_every=0",
]
TASK = {
    "translation": ["data.n_train=64", "data.n_val=8", "data.n_test=8", "data.batch_size=16", "task.beam_size=2"],
    "captioning": [
        "task=captioning",
        "data.n_train=32",
        "data.n_val=8",
        "data.n_test=8",
        "data.batch_size=8",
        "data.canvas=32",
        "data.cell=8",
        "model.image.channels=[8,8,16]",
        "task.max_decode_len=8",
        "task.beam_size=2",
    ],
}
FAST = {("translation", "soft"), ("captioning", "hard")}


def cases() -> list:
    found = []
    for task in TASK:
        for mechanism in sorted(MECHANISMS):
            marks = () if (task, mechanism) in FAST else (pytest.mark.e2e,)
            found.append(pytest.param(task, mechanism, marks=marks, id=f"{task}-{mechanism}"))
    return found


@pytest.mark.parametrize(("task", "mechanism"), cases())
def test_every_mechanism_trains_in_a_transformer(task, mechanism):
    overrides = [*TASK[task], *SMALL, f"attention={mechanism}"]
    if "cross" in MECHANISMS[mechanism][0].unsupported:
        with pytest.raises(ConfigError, match=f"attention={mechanism} cannot be used in a Transformer"):
            compose(overrides)
        return
    result = train(compose(overrides))
    run = MlflowClient(result.tracking_uri).get_run(result.run_id)
    assert run.info.status == "FINISHED"
    assert run.data.params["model.kind"] == "transformer"
    metrics = run.data.metrics
    for metric in (TASKS[task].headline, TASKS[task].monitor, "test/align_acc", "speed/train_samples_per_s"):
        assert metric in metrics, metric
    # per-head entropy of the traced layer, beside the mean every mechanism reports
    assert {"stability/attention_entropy_head0", "stability/attention_entropy_head1"} <= set(metrics)
    assert all(f"stability/{name}" in metrics for name in MECHANISMS[mechanism][0].training_metrics)
    # a sampling mechanism's gradient estimator, measured on the projections that score its choice
    assert (metrics.get("stability/grad_estimator_var", 0) > 0) == MECHANISMS[mechanism][0].stochastic
