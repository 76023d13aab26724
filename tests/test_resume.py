"""``lightning-attn train --resume RUN_ID``: a stopped run continues where it ended, into the same MLflow run."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pytest
import torch
from lightning.pytorch.callbacks import Callback
from mlflow import MlflowClient

from lightning_attn import cli
from lightning_attn.config import compose
from lightning_attn.saved_runs import RunRecordError
from lightning_attn.tracking import tags as T
from lightning_attn.train import TrainResult, resume, train

from .helpers import tiny

RUN = tiny("speed.latency_calls_b1=0", "speed.latency_calls_batch=0")


class CtrlCInEpoch(Callback):
    """Ctrl+C as epoch ``epoch`` starts (its predecessors are trained and checkpointed)."""

    def __init__(self, epoch: int):
        self.epoch = epoch

    def on_train_epoch_start(self, trainer, module):
        if trainer.current_epoch == self.epoch:
            raise KeyboardInterrupt


class Watch(Callback):
    """Each epoch's training batches, and the plateau scheduler as each epoch starts."""

    def __init__(self):
        self.batches: dict[int, list[bytes]] = {}
        self.scheduler: dict[int, tuple[int, float]] = {}

    def on_train_epoch_start(self, trainer, module):
        plateau = trainer.lr_scheduler_configs[0].scheduler
        self.scheduler[trainer.current_epoch] = (plateau.last_epoch, plateau.best)

    def on_train_batch_start(self, trainer, module, batch, batch_idx):
        self.batches.setdefault(trainer.current_epoch, []).append(batch.src.numpy().tobytes())


@dataclass
class Resumed:
    """A run of 3 epochs stopped by Ctrl+C as its third started (KILLED, two epochs trained and checkpointed),
    then resumed with ``trainer.max_epochs=4``; what was seen before and after."""

    stopped: object  # the MLflow run as it was when stopped
    result: TrainResult
    uri: str
    client: MlflowClient
    before: Watch = field(default_factory=Watch)
    after: Watch = field(default_factory=Watch)


@pytest.fixture(scope="module")
def resumed(tmp_path_factory) -> Resumed:
    folder = tmp_path_factory.mktemp("resume")
    uri = f"sqlite:///{folder / 'mlflow.db'}"
    cfg = compose(
        [
            *RUN,
            "trainer.max_epochs=3",
            "task.lr_schedule=plateau",
            f"logger.tracking_uri={uri}",
            f"output_dir={folder / 'out'}",
        ]
    )
    before, after = Watch(), Watch()
    with pytest.raises((KeyboardInterrupt, SystemExit)):
        train(cfg, callbacks=[CtrlCInEpoch(2), before])
    client = MlflowClient(uri)
    stopped = client.search_runs([client.get_experiment_by_name("lightning-attn").experiment_id])[0]
    assert stopped.info.status == "KILLED" and T.FAILURE_REASON in stopped.data.tags
    last = Path(stopped.data.tags[T.BEST_CHECKPOINT]).with_name("last.ckpt")
    assert torch.load(last, map_location="cpu", weights_only=True)["epoch"] == 1  # epochs 0 and 1 trained
    result = resume(stopped.info.run_id, [f"logger.tracking_uri={uri}", "trainer.max_epochs=4"], callbacks=[after])
    return Resumed(stopped, result, uri, client, before, after)


@pytest.mark.e2e
def test_a_stopped_run_resumes_from_its_last_checkpoint_into_the_same_run(resumed):
    run_id, client = resumed.stopped.info.run_id, resumed.client
    assert resumed.result.run_id == run_id
    again = client.get_run(run_id)
    assert again.info.status == "FINISHED" and T.FAILURE_REASON not in again.data.tags
    assert again.data.tags[T.RESUMED] == f"from last.ckpt (logger.tracking_uri={resumed.uri} trainer.max_epochs=4)"
    # epochs 2 and 3 only: two more validations, at later steps; the best checkpoint tested at the end
    assert set(resumed.before.batches) == {0, 1} and set(resumed.after.batches) == {2, 3}
    steps = [m.step for m in client.get_metric_history(run_id, "val/bleu")]
    assert len(steps) == 4 and steps == sorted(set(steps))
    assert again.data.metrics["test/bleu"] == resumed.result.metrics["test/bleu"]
    # early stopping's record counts the epochs before the stop too
    assert resumed.result.metrics["run/epochs"] == 4


@pytest.mark.e2e
def test_the_resumed_config_is_the_one_training_went_on_with(resumed):
    saved = Path(resumed.client.download_artifacts(resumed.stopped.info.run_id, "config.yaml")).read_text()
    assert "max_epochs: 4" in saved  # evaluate, and a later resume, read it


@pytest.mark.e2e
def test_a_plateau_schedule_resumes_with_the_step_lightning_skips(resumed):
    """Lightning checkpoints before the epoch's plateau step and skips it on resume; the task takes it: after a
    resume the scheduler has seen every finished epoch's validation metric, as in an uninterrupted run."""
    bleu = [m.value for m in resumed.client.get_metric_history(resumed.stopped.info.run_id, "val/bleu")]
    steps, best = resumed.after.scheduler[2]
    assert steps == 2  # two finished epochs, two steps (Lightning alone: one)
    assert best == pytest.approx(max(bleu[:2]))


@pytest.mark.e2e
def test_a_resumed_run_does_not_replay_its_first_epochs_data_order(resumed):
    # seeded as it started, the resumed run would draw epoch 0's batches again
    assert resumed.after.batches[2] != resumed.before.batches[0]


@pytest.mark.e2e
def test_resume_errors_are_one_line(resumed, capsys):
    run_id, uri = resumed.stopped.info.run_id, resumed.uri
    cases = [
        (["no-such-run"], "no run 'no-such-run' in sqlite:///"),
        ([run_id, "attention=hard"], "attention= cannot change"),
        ([run_id, "task.no_such_key=1"], "unknown key 'task.no_such_key'"),
    ]
    for (resumed_id, *changes), message in cases:
        assert cli.main(["train", "--resume", resumed_id, *changes, f"logger.tracking_uri={uri}"]) == cli.EXIT_BAD_INPUT
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and message in err[0], err


@pytest.mark.e2e
def test_a_run_without_a_checkpoint_cannot_resume(tmp_path):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    result = train(
        compose(
            [*RUN, "trainer.enable_checkpointing=false", f"logger.tracking_uri={uri}", f"output_dir={tmp_path / 'out'}"]
        )
    )
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


# ── which checkpoint a resume reads (no training) ───────────────────────────────────────────────
def _run_with_tags(**tags):
    from types import SimpleNamespace

    return SimpleNamespace(info=SimpleNamespace(run_id="abc"), data=SimpleNamespace(tags=tags))


class _NoArtifacts:
    """A client of a store that holds no uploaded checkpoint."""

    def download_artifacts(self, run_id, path, dst):
        raise OSError(f"no artifact {path}")


@pytest.mark.parametrize("files", [("best.ckpt", "last.ckpt"), ("best.ckpt",), ()])
def test_resume_reads_last_ckpt_else_best_else_says_which_is_gone(tmp_path, files):
    from lightning_attn.saved_runs import resume_checkpoint

    for name in files:
        (tmp_path / name).write_bytes(b"")
    run = _run_with_tags(**{T.BEST_CHECKPOINT: str(tmp_path / "best.ckpt")})
    if files:
        assert resume_checkpoint(_NoArtifacts(), run, tmp_path / "dl") == tmp_path / files[-1]
    else:
        with pytest.raises(RunRecordError, match=f"no checkpoint to resume from .{tmp_path / 'best.ckpt'} is gone"):
            resume_checkpoint(_NoArtifacts(), run, tmp_path / "dl")
    with pytest.raises(RunRecordError, match="it recorded none"):
        resume_checkpoint(_NoArtifacts(), _run_with_tags(), tmp_path / "dl")
