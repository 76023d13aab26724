"""A tiny training run per mechanism, read back from MLflow."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from mlflow import MlflowClient

from lightning_attn.attention import MECHANISMS
from lightning_attn.cli import main
from lightning_attn.config import compose
from lightning_attn.train import train

from ..helpers import tiny


@pytest.mark.parametrize("mechanism", sorted(MECHANISMS))
def test_tiny_run_is_recorded_in_mlflow(mechanism):
    result = train(compose(tiny(mechanism=mechanism)))
    assert result.tracking_uri == f"sqlite:///{Path.cwd() / 'mlflow.db'}"
    client = MlflowClient(result.tracking_uri)
    run = client.get_run(result.run_id)
    assert run.info.status == "FINISHED"
    assert run.data.params["attention.mechanism"] == mechanism
    assert run.data.params["trainer.limit_train_batches"] == "3"
    assert {"task": "translation", "attention": mechanism, "seed": "0"}.items() <= run.data.tags.items()
    for metric in ("test/bleu", "val/bleu", "val/loss", "val/ppl", "train/loss_epoch", "val/align_acc"):
        assert metric in run.data.metrics, metric
    assert 0.0 <= run.data.metrics["test/bleu"] <= 100.0
    assert run.data.metrics["test/bleu"] == pytest.approx(result.metrics["test/bleu"])
    artifacts = {a.path for a in client.list_artifacts(result.run_id)}
    assert {"config.yaml", "predictions"} <= artifacts
    config_text = Path(client.download_artifacts(result.run_id, "config.yaml")).read_text()
    assert f"mechanism: {mechanism}" in config_text
    hyps = Path(client.download_artifacts(result.run_id, "predictions/test.hyp.txt")).read_text().splitlines()
    assert len(hyps) == 16
    # the best checkpoint is a plain-tensor checkpoint that loads with weights_only=True
    ckpt = torch.load(result.best_checkpoint, weights_only=True)
    assert "state_dict" in ckpt and ckpt["hyper_parameters"]["attention"]["mechanism"] == mechanism


def test_hard_run_logs_the_reinforce_baseline():
    result = train(compose(tiny(mechanism="hard")))
    client = MlflowClient(result.tracking_uri)
    history = client.get_metric_history(result.run_id, "stability/reinforce_baseline")
    assert history and history[-1].value < 0  # a log-likelihood
    assert client.get_metric_history(result.run_id, "train/reinforce_loss_epoch")  # its loss term, logged


def _the_only_run():
    """The one run of the default experiment in the working folder's store."""
    client = MlflowClient(f"sqlite:///{Path.cwd() / 'mlflow.db'}")
    (run,) = client.search_runs([client.get_experiment_by_name("lightning-attn").experiment_id])
    return run


def test_failed_run_is_marked_failed_with_its_reason(monkeypatch):
    from lightning_attn.tasks import TranslationModule

    def explode(self, batch, batch_idx):
        raise RuntimeError("boom in training_step")

    monkeypatch.setattr(TranslationModule, "training_step", explode)
    with pytest.raises(RuntimeError, match="boom"):
        train(compose(tiny()))
    run = _the_only_run()
    assert run.info.status == "FAILED"
    assert "boom in training_step" in run.data.tags["failure_reason"]


def test_interrupted_run_is_marked_killed(monkeypatch):
    import signal

    from lightning_attn.tasks import TranslationModule

    def interrupt(self, batch, batch_idx):
        raise KeyboardInterrupt

    monkeypatch.setattr(TranslationModule, "training_step", interrupt)
    try:
        with pytest.raises(SystemExit) as stopped:  # Lightning's graceful shutdown after Ctrl+C
            train(compose(tiny()))
        assert stopped.value.code == 128 + signal.SIGINT  # a stop, not a failure (Lightning's own exit is 1)
    finally:
        signal.signal(signal.SIGINT, signal.default_int_handler)  # Lightning ignores SIGINT from then on
    run = _the_only_run()
    assert run.info.status == "KILLED"
    assert run.data.tags["failure_reason"] == "interrupted by Ctrl+C (SIGINT)"


def test_a_failure_outside_lightnings_loops_still_ends_the_run_failed(monkeypatch):
    """After the test, outside fit and test (the latency measurement): the run is not left RUNNING."""

    def explode(*args, **kwargs):
        raise RuntimeError("boom in the latency measurement")

    monkeypatch.setattr("lightning_attn.train.inference_latency", explode)
    with pytest.raises(RuntimeError, match="boom"):
        train(compose(tiny()))
    run = _the_only_run()
    assert run.info.status == "FAILED"
    assert "boom in the latency measurement" in run.data.tags["failure_reason"]
    assert run.data.tags["best_checkpoint"]  # tagged when its test ended, before the failure


def test_cli_train_prints_result_and_respects_tracking_env(monkeypatch, tmp_path, capsys):
    store = tmp_path / "elsewhere.db"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{store}")
    assert main(["train", *tiny(), "logger.experiment_name=cli-test", "output_dir=out"]) == 0
    out = capsys.readouterr().out
    assert "test/bleu" in out and "lightning-attn ui" in out
    assert store.is_file() and not (Path.cwd() / "mlflow.db").exists()
    client = MlflowClient(f"sqlite:///{store}")
    (run,) = client.search_runs([client.get_experiment_by_name("cli-test").experiment_id])
    assert list((Path.cwd() / "out").rglob("best.ckpt"))
    # by default the run is also an MLflow model, which translates as predict does
    assert f"MLflow model:   runs:/{run.info.run_id}/model" in out
    import mlflow.pyfunc
    import pandas as pd

    from lightning_attn.predict import predict

    sentences = ["the dog sees a cat", "", "some big dogs near the quick cars see some kings"]
    served = mlflow.pyfunc.load_model(f"runs:/{run.info.run_id}/model")
    assert list(served.predict(pd.DataFrame({"source": sentences}))) == predict(run.info.run_id, sentences)
    assert list(served.predict(pd.DataFrame({"source": sentences}), params={"beam": 1})) == predict(
        run.info.run_id, sentences, beam=1
    )


def test_multi30k_trains_through_the_real_loader(multi30k, tmp_path):
    overrides = tiny(
        "data=multi30k", f"data.root={multi30k}", f"data.cache_dir={tmp_path / 'vocab'}", "data.bpe_vocab_size=2000"
    )
    overrides = [o for o in overrides if not o.startswith("data.n_")]
    overrides += ["trainer.limit_val_batches=2", "trainer.limit_test_batches=2", "task.max_decode_len=20"]
    result = train(compose(overrides))
    assert result.metrics["train/loss_epoch"] > 0
    run = MlflowClient(result.tracking_uri).get_run(result.run_id)
    assert run.data.params["data.test_split"] == "test_2016_flickr"
    assert run.data.tags["data"] == "multi30k"
    assert "val/align_acc" not in run.data.metrics  # real text has no gold alignment
    assert len(list((tmp_path / "vocab").glob("bpe-*-2000-*.json"))) == 2


def test_alignment_pictures_are_mlflow_artifacts():
    from PIL import Image

    result = train(compose(tiny("attention=hard", "task.attention_pictures_every=1", "task.attention_pictures=2")))
    client = MlflowClient(result.tracking_uri)
    files = sorted(a.path for a in client.list_artifacts(result.run_id, "attention/epoch_001"))
    assert files == ["attention/epoch_001/val_0.png", "attention/epoch_001/val_1.png"]
    picture = Image.open(client.download_artifacts(result.run_id, files[0], str(Path.cwd())))
    assert picture.width > 200 and picture.height > 100


def _run_metrics(result) -> dict[str, float]:
    return MlflowClient(result.tracking_uri).get_run(result.run_id).data.metrics


def test_alignment_and_sparsity_are_measured_at_evaluation():
    soft, hard = (_run_metrics(train(compose(tiny(mechanism=m)))) for m in ("soft", "hard"))
    precision, recall, aer = (soft[f"test/align_{k}"] for k in ("precision", "recall", "aer"))
    assert 0 <= precision <= 1 and recall == soft["test/align_acc"]
    assert aer == pytest.approx(1 - 2 * precision * recall / (precision + recall), abs=1e-6)  # 1 - F1
    assert soft["test/attention_zero_share"] == 0 and soft["test/attention_positions"] > 1  # a distribution
    assert hard["test/attention_positions"] == pytest.approx(1.0)  # argmax at evaluation: one position
    assert hard["test/attention_zero_share"] > 0.8


def test_the_gradient_estimator_variance_is_measured_without_changing_training():
    measured = train(compose(tiny("stability.estimator_every=1", "stability.estimator_samples=3", mechanism="hard")))
    plain = train(compose(tiny("stability.estimator_every=0", mechanism="hard")))
    a, b = _run_metrics(measured), _run_metrics(plain)
    assert a["stability/grad_estimator_var"] > 0 and a["stability/grad_estimator_snr"] >= 0
    assert "stability/grad_estimator_var" not in b
    for key in ("train/loss_epoch", "val/loss", "test/bleu", "stability/reinforce_baseline"):
        assert a[key] == pytest.approx(b[key], rel=1e-6), key  # the same training, measured or not
    soft = _run_metrics(train(compose(tiny("stability.estimator_every=1", mechanism="soft"))))
    assert "stability/grad_estimator_var" not in soft  # a deterministic mechanism has no estimator variance
