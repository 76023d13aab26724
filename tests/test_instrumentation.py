"""Stability and speed instrumentation: every run carries both families, and the measurements are right."""

from __future__ import annotations

import math
import time
from pathlib import Path

import lightning as L
import pytest
import torch
from lightning.pytorch.callbacks import Callback
from mlflow import MlflowClient

from lightning_attn.attention import MECHANISMS, build_attention
from lightning_attn.cli import main
from lightning_attn.config import compose
from lightning_attn.tracking.seeds import seed_stats
from lightning_attn.tracking.speed import SpeedMonitor
from lightning_attn.tracking.stability import DivergedError, SpikeCounter
from lightning_attn.train import train, train_seeds

from .helpers import every_mechanism, tiny

STABILITY = ["grad_norm_mean", "grad_norm_max", "grad_norm_std", "loss_spikes", "attention_entropy"]
SPEED = [
    "train_samples_per_s",
    "train_tokens_per_s",
    "step_time_ms_p50",
    "step_time_ms_p95",
    "peak_rss_mb",
    "infer_latency_ms_p50_b1",
    "infer_latency_ms_p95_b1",
    "infer_latency_ms_p50_b16",
    "params",
]


def run_metrics(run_id: str) -> dict[str, float]:
    return MlflowClient(f"sqlite:///{Path.cwd() / 'mlflow.db'}").get_run(run_id).data.metrics


@pytest.mark.parametrize("mechanism", every_mechanism(fast=("soft", "hard")))
def test_every_run_carries_the_stability_and_speed_families(mechanism):
    result = train(compose(tiny("trainer.max_epochs=2", mechanism=mechanism)))
    metrics = run_metrics(result.run_id)
    own = list(MECHANISMS[mechanism][0].training_metrics)  # what the mechanism says its training reports
    expected = [f"stability/{m}" for m in STABILITY + own]
    expected += [f"speed/{m}" for m in SPEED]
    assert not [m for m in expected if m not in metrics]
    assert all(math.isfinite(metrics[m]) for m in expected)
    assert metrics["speed/params"] > 1000
    assert metrics["stability/grad_norm_max"] >= metrics["stability/grad_norm_mean"] > 0
    assert metrics["speed/infer_latency_ms_p95_b1"] >= metrics["speed/infer_latency_ms_p50_b1"] > 0


def test_gradient_norm_is_the_global_norm_before_clipping():
    seen = {}

    class Spy(Callback):
        def on_before_optimizer_step(self, trainer, pl_module, optimizer):
            grads = [p.grad.flatten() for p in pl_module.parameters() if p.grad is not None]
            seen.setdefault("norms", []).append(float(torch.cat(grads).norm()))

    result = train(compose(tiny("trainer.gradient_clip_val=0.001")), callbacks=[Spy()])
    metrics = run_metrics(result.run_id)
    assert metrics["stability/grad_norm_max"] == pytest.approx(max(seen["norms"]), rel=1e-4)  # not clipped to 0.001
    assert metrics["stability/grad_norm_mean"] == pytest.approx(sum(seen["norms"]) / len(seen["norms"]), rel=1e-4)


def test_spike_counter_counts_an_injected_spike():
    counter = SpikeCounter(factor=3.0, window=50, warmup=10)
    losses = [2.0 - 0.01 * i for i in range(30)] + [9.0] + [1.7] * 10
    flagged = [i for i, loss in enumerate(losses) if counter.update(loss)]
    assert flagged == [30] and counter.spikes == 1


def test_uniform_attention_entropy_is_log_n():
    keys = torch.randn(3, 7, 8)
    mask = torch.tensor([[True] * 7, [True] * 4 + [False] * 3, [True] * 2 + [False] * 5])
    for mechanism in ("uniform", "soft"):
        attention = build_attention(
            {"mechanism": mechanism, "score": "dot"} if mechanism == "soft" else {"mechanism": mechanism},
            query_dim=8,
            key_dim=8,
        )
        query = torch.zeros(3, 8)  # dot scores all 0: soft attention is uniform too
        out = attention(query, keys, keys, mask)
        torch.testing.assert_close(out.entropy, torch.log(torch.tensor([7.0, 4.0, 2.0])))


def test_uniform_run_logs_the_mean_log_source_length():
    result = train(compose(tiny(mechanism="uniform")))
    entropy = run_metrics(result.run_id)["stability/attention_entropy"]
    assert math.log(3) < entropy < math.log(40)  # log of a source length (with </s>) in the tiny corpus


class _Poison(Callback):
    """Turns the weights into NaN at the second step."""

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        if batch_idx == 1:
            with torch.no_grad():
                next(pl_module.parameters()).fill_(float("nan"))


def test_nan_stops_the_run_with_its_reason():
    with pytest.raises(DivergedError, match="nan.*diverged"):
        train(compose(tiny("logger.experiment_name=nan")), callbacks=[_Poison()])
    client = MlflowClient(f"sqlite:///{Path.cwd() / 'mlflow.db'}")
    (run,) = client.search_runs([client.get_experiment_by_name("nan").experiment_id])
    assert run.info.status == "FAILED" and "nan" in run.data.tags["failure_reason"]
    assert "step 1" in run.data.tags["failure_reason"]  # stopped at once, not at the end of the epoch


def test_exploding_configuration_is_flagged():
    # at lr=1e30 the loss stays finite (it reaches ~1e31): only the max_loss bound catches it
    with pytest.raises(DivergedError, match=r"> stability.max_loss=10000.*diverged"):
        train(compose(tiny("task.lr=1e30", "trainer.max_epochs=2")))


def test_measured_throughput_agrees_with_a_directly_timed_loop():
    """SpeedMonitor's samples/s against the same epoch timed from the outside, end to end.

    Both clocks run over the same steps at the same time, so a busy machine slows both alike. The
    monitor times only forward/backward/step, so it may be faster than the end-to-end rate, never slower.
    """
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(64, 256), torch.nn.ReLU(), torch.nn.Linear(256, 64))
    batches = [torch.randn(32, 64) for _ in range(40)]

    class Batch:  # what SpeedMonitor reads: len() and the target tokens
        def __init__(self, x):
            self.x, self.tgt_out = x, torch.ones(len(x), 5, dtype=torch.long)

        def __len__(self):
            return len(self.x)

    class Module(L.LightningModule):
        def __init__(self):
            super().__init__()
            self.model = model

        def training_step(self, batch, batch_idx):
            return self.model(batch.x).pow(2).mean()

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.01)

        def transfer_batch_to_device(self, batch, device, dataloader_idx):
            return batch

    logged, clock = {}, {}

    class Stopwatch(Callback):  # registered first: starts before and stops after the monitor's epoch hooks
        def on_train_epoch_start(self, trainer, pl_module):
            clock["start"] = time.perf_counter()

        def on_train_epoch_end(self, trainer, pl_module):
            clock["end"] = time.perf_counter()

    class Keep(Callback):
        def on_train_epoch_end(self, trainer, pl_module):
            logged.update({k: float(v) for k, v in trainer.callback_metrics.items()})

    trainer = L.Trainer(
        max_epochs=1,
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[Stopwatch(), SpeedMonitor(), Keep()],
    )
    trainer.fit(Module(), train_dataloaders=torch.utils.data.DataLoader([Batch(x) for x in batches], batch_size=None))
    direct = 32 * len(batches) / (clock["end"] - clock["start"])
    measured = logged["speed/train_samples_per_s"]
    assert 0.95 < measured / direct < 3.0, (measured, direct)
    assert logged["speed/train_tokens_per_s"] == pytest.approx(measured * 5)


def test_seeds_train_one_child_each_and_summarise_on_the_parent():
    result = train_seeds(compose(tiny("seeds=[0,1,2]", "logger.experiment_name=seeds")))
    client = MlflowClient(f"sqlite:///{Path.cwd() / 'mlflow.db'}")
    runs = client.search_runs([client.get_experiment_by_name("seeds").experiment_id])
    parent = next(r for r in runs if r.info.run_id == result.parent_run_id)
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
    assert sorted(r.data.params["seed"] for r in children) == ["0", "1", "2"]
    assert parent.info.status == "FINISHED" and all(r.info.status == "FINISHED" for r in children)
    values = [r.data.metrics["test/loss"] for r in children]
    st = seed_stats(values)
    assert parent.data.metrics["test/loss_mean"] == pytest.approx(sum(values) / 3)
    assert parent.data.metrics["test/loss_std"] == pytest.approx(st.std)
    assert parent.data.metrics["test/loss_ci95"] == pytest.approx(4.303 * st.std / math.sqrt(3), rel=1e-3)
    assert parent.data.metrics["run/epochs_mean"] == 1.0  # how each seed's training ended, summarised too
    assert "speed/train_samples_per_s_mean" in parent.data.metrics
    # the parent says what it compares, and records the data its seeds trained on; all name their command
    assert parent.data.tags["mlflow.note.content"].startswith("**soft** attention on **translation**")
    digests = {d.dataset.digest for d in children[0].inputs.dataset_inputs}
    assert len(digests) == 3 and {d.dataset.digest for d in parent.inputs.dataset_inputs} == digests
    assert {r.data.tags["mlflow.source.name"] for r in [parent, *children]} == {"lightning-attn train"}


@pytest.mark.parametrize("failing", [{1}, {0, 1}])
def test_failed_seeds_are_counted_and_none_finished_exits_1(monkeypatch, capsys, failing):
    from lightning_attn.tasks import TranslationModule

    step = TranslationModule.training_step

    def fails_for_some_seeds(self, batch, batch_idx):
        if torch.initial_seed() in failing:  # seed_everything(seed) set it
            raise RuntimeError(f"boom with seed {torch.initial_seed()}")
        return step(self, batch, batch_idx)

    monkeypatch.setattr(TranslationModule, "training_step", fails_for_some_seeds)
    code = main(["train", *tiny("seeds=[0,1]", "logger.experiment_name=failing")])
    err = capsys.readouterr().err.strip().splitlines()[-1]
    first = min(failing)
    if failing == {0, 1}:
        assert code == 1 and err == f"error: no seed finished (2 failed); the first, seed {first}: " + (
            f"RuntimeError: boom with seed {first}"
        )
    else:
        assert code == 0 and err == "warning: 1 of 2 seed(s) failed; the first, seed 1: RuntimeError: boom with seed 1"
    client = MlflowClient(f"sqlite:///{Path.cwd() / 'mlflow.db'}")
    runs = client.search_runs([client.get_experiment_by_name("failing").experiment_id])
    parent = next(r for r in runs if "mlflow.parentRunId" not in r.data.tags)
    assert parent.info.status == ("FAILED" if failing == {0, 1} else "FINISHED")
    statuses = {r.data.params["seed"]: r.info.status for r in runs if r is not parent}
    assert statuses == {str(s): "FAILED" if s in failing else "FINISHED" for s in (0, 1)}


def test_seed_stats():
    st = seed_stats([1.0, 2.0, 3.0])
    assert st.mean == 2.0 and st.std == 1.0 and st.ci95 == pytest.approx(4.303 / math.sqrt(3), rel=1e-3)
    assert math.isnan(seed_stats([5.0]).ci95)
    assert st.describe() == "2.00 ± 2.48 (95 % CI, n = 3)"
    two = seed_stats([1.0, 3.0])
    assert not two.interval and two.describe() == "2.00 (n = 2: no CI)"  # an interval from two seeds is noise
