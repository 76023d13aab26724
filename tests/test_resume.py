"""``lightning-attn train --resume RUN_ID``: a stopped run continues where it ended, into the same MLflow run."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from lightning.pytorch.callbacks import Callback
from mlflow import MlflowClient

from lightning_attn import cli
from lightning_attn.config import compose
from lightning_attn.saved_runs import RunRecordError
from lightning_attn.tracking import tags as T
from lightning_attn.train import resume, train

from .helpers import tiny

RUN = tiny("speed.latency_calls_b1=0", "speed.latency_calls_batch=0", "early_stopping.enabled=false")


class CtrlCInEpoch(Callback):
    """Ctrl+C as epoch ``epoch`` starts (its predecessors are trained and checkpointed)."""

    def __init__(self, epoch: int):
        self.epoch = epoch

    def on_train_epoch_start(self, trainer, module):
        if trainer.current_epoch == self.epoch:
            raise KeyboardInterrupt


@pytest.fixture
def stopped(tmp_path):
    """A run of 3 epochs stopped by Ctrl+C as its third starts: KILLED, with two epochs trained."""
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    cfg = compose([*RUN, "trainer.max_epochs=3", f"logger.tracking_uri={uri}", f"output_dir={tmp_path / 'out'}"])
    with pytest.raises((KeyboardInterrupt, SystemExit)):
        train(cfg, callbacks=[CtrlCInEpoch(2)])
    client = MlflowClient(uri)
    run = client.search_runs([client.get_experiment_by_name("lightning-attn").experiment_id])[0]
    assert run.info.status == "KILLED" and T.FAILURE_REASON in run.data.tags
    return run, uri, client


@pytest.mark.e2e
def test_a_stopped_run_resumes_from_its_last_checkpoint_into_the_same_run(stopped):
    run, uri, client = stopped
    last = Path(run.data.tags[T.BEST_CHECKPOINT]).with_name("last.ckpt")
    assert torch.load(last, map_location="cpu", weights_only=True)["epoch"] == 1  # epochs 0 and 1 trained
    steps_before = [m.step for m in client.get_metric_history(run.info.run_id, "val/bleu")]
    assert len(steps_before) == 2

    result = resume(run.info.run_id, [f"logger.tracking_uri={uri}"])

    assert result.run_id == run.info.run_id
    again = client.get_run(run.info.run_id)
    assert again.info.status == "FINISHED" and T.FAILURE_REASON not in again.data.tags
    assert again.data.tags[T.RESUMED] == f"from last.ckpt (logger.tracking_uri={uri})"
    # the third epoch only: one more validation, at a later step; the test scored at the end
    steps = [m.step for m in client.get_metric_history(run.info.run_id, "val/bleu")]
    assert steps[:2] == steps_before and len(steps) == 3 and steps[2] > steps[1]
    assert "test/bleu" in result.metrics and again.data.metrics["test/bleu"] == result.metrics["test/bleu"]


@pytest.mark.e2e
def test_resume_with_more_epochs_trains_them_and_records_the_change(stopped):
    run, uri, client = stopped
    resume(run.info.run_id, [f"logger.tracking_uri={uri}", "trainer.max_epochs=4"])
    assert len(client.get_metric_history(run.info.run_id, "val/bleu")) == 4
    resumed = client.get_run(run.info.run_id).data.tags[T.RESUMED]
    assert resumed.endswith("trainer.max_epochs=4)")
    # the config artifact is the one training went on with: evaluate and a later resume read it
    saved = Path(client.download_artifacts(run.info.run_id, "config.yaml")).read_text()
    assert "max_epochs: 4" in saved


@pytest.mark.e2e
def test_resume_continues_early_stoppings_history(tmp_path):
    """Early stopping's state (the metric history, the epochs without progress) travels in the checkpoint: a
    run resumed after a plateau it had half-sat does not start counting again."""
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    cfg = compose([*tiny("speed.latency_calls_b1=0", "speed.latency_calls_batch=0"), "trainer.max_epochs=3",
                   f"logger.tracking_uri={uri}", f"output_dir={tmp_path / 'out'}"])  # fmt: skip
    with pytest.raises((KeyboardInterrupt, SystemExit)):
        train(cfg, callbacks=[CtrlCInEpoch(2)])
    client = MlflowClient(uri)
    run_id = client.search_runs([client.get_experiment_by_name("lightning-attn").experiment_id])[0].info.run_id
    result = resume(run_id, [f"logger.tracking_uri={uri}"])
    assert result.metrics["run/epochs"] == 3  # the record counts the epochs before the stop too


@pytest.mark.e2e
def test_resume_errors_are_one_line(stopped, tmp_path, capsys):
    run, uri, _ = stopped
    cases = [
        (["no-such-run"], "no run 'no-such-run' in sqlite:///"),
        ([run.info.run_id, "attention=hard"], "attention= cannot change"),
        ([run.info.run_id, "task.no_such_key=1"], "unknown key 'task.no_such_key'"),
    ]
    for arguments, message in cases:
        run_id, *changes = arguments
        assert cli.main(["train", "--resume", run_id, *changes, f"logger.tracking_uri={uri}"]) == cli.EXIT_BAD_INPUT
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and message in err[0], err


@pytest.mark.e2e
def test_a_run_without_a_checkpoint_cannot_resume(tmp_path):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    result = train(compose([*RUN, "trainer.enable_checkpointing=false", f"logger.tracking_uri={uri}",
                            f"output_dir={tmp_path / 'out'}"]))  # fmt: skip
    with pytest.raises(RunRecordError, match=f"run {result.run_id} has no checkpoint to resume from"):
        resume(result.run_id, [f"logger.tracking_uri={uri}"])


@pytest.mark.e2e
def test_resume_from_another_folder_keeps_the_runs_checkpoint_folder(tmp_path, monkeypatch):
    started, elsewhere = tmp_path / "started", tmp_path / "elsewhere"
    started.mkdir(), elsewhere.mkdir()
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.chdir(started)
    cfg = compose([*RUN, "trainer.max_epochs=3", f"logger.tracking_uri={uri}", "output_dir=outputs"])
    with pytest.raises((KeyboardInterrupt, SystemExit)):
        train(cfg, callbacks=[CtrlCInEpoch(2)])
    client = MlflowClient(uri)
    run = client.search_runs([client.get_experiment_by_name("lightning-attn").experiment_id])[0]
    monkeypatch.chdir(elsewhere)
    result = resume(run.info.run_id, [f"logger.tracking_uri={uri}"])
    assert Path(result.best_checkpoint).parent == Path(run.data.tags[T.BEST_CHECKPOINT]).parent
    assert not (elsewhere / "outputs").exists()
    last = Path(run.data.tags[T.BEST_CHECKPOINT]).with_name("last.ckpt")
    assert torch.load(last, map_location="cpu", weights_only=True)["global_step"] == 3 * 3  # 3 batches an epoch


@pytest.mark.e2e
def test_a_plateau_schedule_resumes_with_the_step_lightning_skips(tmp_path):
    """Lightning checkpoints before the epoch's plateau step and skips it on resume; the task takes it: after a
    resume the scheduler has seen every finished epoch's validation metric, as in an uninterrupted run."""

    class SchedulerAtEpochStart(Callback):
        def __init__(self):
            self.seen = []

        def on_train_epoch_start(self, trainer, module):
            plateau = trainer.lr_scheduler_configs[0].scheduler
            self.seen.append((trainer.current_epoch, plateau.last_epoch, plateau.best))

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    cfg = compose([*RUN, "trainer.max_epochs=3", "task.lr_schedule=plateau", f"logger.tracking_uri={uri}",
                   f"output_dir={tmp_path / 'out'}"])  # fmt: skip
    with pytest.raises((KeyboardInterrupt, SystemExit)):
        train(cfg, callbacks=[CtrlCInEpoch(2)])
    client = MlflowClient(uri)
    run_id = client.search_runs([client.get_experiment_by_name("lightning-attn").experiment_id])[0].info.run_id
    watch = SchedulerAtEpochStart()
    resume(run_id, [f"logger.tracking_uri={uri}"], callbacks=[watch])
    bleu = [m.value for m in client.get_metric_history(run_id, "val/bleu")]
    epoch, steps, best = watch.seen[0]
    assert (epoch, steps) == (2, 2)  # two finished epochs, two steps (Lightning alone: one)
    assert best == pytest.approx(max(bleu[:2]))


@pytest.mark.e2e
def test_a_resumed_run_does_not_replay_its_first_epochs_data_order(tmp_path):
    class FirstBatches(Callback):
        def __init__(self):
            self.by_epoch: dict[int, list[bytes]] = {}

        def on_train_batch_start(self, trainer, module, batch, batch_idx):
            self.by_epoch.setdefault(trainer.current_epoch, []).append(batch.src.numpy().tobytes())

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    cfg = compose([*RUN, "trainer.max_epochs=3", f"logger.tracking_uri={uri}", f"output_dir={tmp_path / 'out'}"])
    before, after = FirstBatches(), FirstBatches()
    with pytest.raises((KeyboardInterrupt, SystemExit)):
        train(cfg, callbacks=[CtrlCInEpoch(2), before])
    client = MlflowClient(uri)
    run_id = client.search_runs([client.get_experiment_by_name("lightning-attn").experiment_id])[0].info.run_id
    resume(run_id, [f"logger.tracking_uri={uri}"], callbacks=[after])
    assert set(before.by_epoch) == {0, 1} and set(after.by_epoch) == {2}
    assert after.by_epoch[2] != before.by_epoch[0]  # seeded as it started, it would draw epoch 0's batches again


# ── which checkpoint a resume reads (no training) ───────────────────────────────────────────────
def _run_with_tags(**tags):
    from types import SimpleNamespace

    return SimpleNamespace(info=SimpleNamespace(run_id="abc"), data=SimpleNamespace(tags=tags))


@pytest.mark.parametrize("files", [("best.ckpt", "last.ckpt"), ("best.ckpt",), ()])
def test_resume_reads_last_ckpt_else_best_else_says_which_is_gone(tmp_path, files):
    from lightning_attn.saved_runs import resume_checkpoint

    for name in files:
        (tmp_path / name).write_bytes(b"")
    run = _run_with_tags(**{T.BEST_CHECKPOINT: str(tmp_path / "best.ckpt")})
    if files:
        assert resume_checkpoint(run) == tmp_path / files[-1]
    else:
        with pytest.raises(RunRecordError, match=f"no checkpoint to resume from .{tmp_path / 'best.ckpt'} is gone"):
            resume_checkpoint(run)
    with pytest.raises(RunRecordError, match="it recorded none"):
        resume_checkpoint(_run_with_tags())
