"""Training to convergence: the plateau rule, early stopping in a real run, and the record every run leaves."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from mlflow import MlflowClient

from lightning_attn.config import compose
from lightning_attn.tracking.convergence import judge, longest_wait
from lightning_attn.train import train

from ..helpers import tiny


def test_a_plateau_converges():
    outcome = judge([10, 40, 60, 61, 60.8, 60.9, 60.7], "max", patience=3, min_delta=0.5)
    assert outcome.converged and outcome.best_epoch == 4 and outcome.epochs == 7
    assert outcome.reason.startswith("plateau")


def test_still_improving_at_the_cap_has_not_converged():
    outcome = judge([10, 40, 60, 70, 80], "max", patience=3, min_delta=0.5, cap_reached=True)
    assert not outcome.converged and outcome.best_epoch == 5
    assert "epoch cap" in outcome.reason and "still improving" in outcome.reason


def test_gains_below_min_delta_are_no_progress():
    assert judge([50, 50.2, 50.4, 50.3, 50.45], "max", patience=3, min_delta=0.5).converged
    assert not judge([50, 50.6, 51.2, 51.8], "max", patience=3, min_delta=0.5).converged


def test_a_metric_flat_at_zero_while_the_loss_falls_is_not_a_plateau():
    """Hard attention before REINFORCE has learnt: BLEU sits at 0 while the likelihood improves."""
    bleu, loss = [0.0, 0.0, 0.0, 0.0, 0.0], [5.0, 4.2, 3.6, 3.1, 2.7]
    assert judge(bleu, "max", patience=3, min_delta=0.5).converged  # the metric alone would stop here
    assert not judge(bleu, "max", patience=3, min_delta=0.5, loss=loss, loss_min_delta=0.01).converged
    plateau = judge(bleu + [0.0] * 3, "max", 3, min_delta=0.5, loss=loss + [2.7, 2.71, 2.705], loss_min_delta=0.01)
    assert plateau.converged


def test_lower_is_better_metrics():
    assert judge([3.0, 2.0, 1.5, 1.49, 1.6, 1.55], "min", patience=3, min_delta=0.05).best_epoch == 3


def test_longest_wait_is_what_a_patience_must_exceed_for_a_run_to_reach_its_last_step():
    """Built-in translation's shape: a step, 4 flat epochs, the next step, then a final plateau (not a wait)."""
    bleu = [10, 93, 93.2, 93.4, 93.1, 93.3, 96.7, 96.8, 100, 100, 100, 100]
    assert longest_wait(bleu, "max", min_delta=1.0) == 4
    assert judge(bleu[:6], "max", patience=4, min_delta=1.0).converged  # patience 4 stops before the climb
    assert not judge(bleu[:6], "max", patience=5, min_delta=1.0).converged  # 5 waits for it
    assert longest_wait(bleu, "max", min_delta=0.1) == 2  # 93.2 and 93.4 count as progress at this delta


def test_longest_wait_counts_the_loss_progress_as_judge_does():
    bleu, loss = [0.0] * 5 + [50.0], [5.0, 4.0, 3.0, 3.0, 3.0, 1.0]
    assert longest_wait(bleu, "max", min_delta=0.5) == 4
    assert longest_wait(bleu, "max", min_delta=0.5, loss=loss, loss_min_delta=0.01) == 2
    assert longest_wait([3.0, 2.0, 1.0], "min", min_delta=0.1) == 0 and longest_wait([], "max", 1.0) == 0


def _copy_task(root: Path) -> Path:
    """Parallel text whose validation and test sets are the training set: data a model can master."""
    rng = random.Random(0)
    words = "red blue green cat dog sun moon tree".split()
    lines = [" ".join(rng.choices(words, k=rng.randint(3, 5))) for _ in range(64)]
    root.mkdir()
    for split in ("train", "val", "test"):
        for lang in ("src", "tgt"):
            (root / f"{split}.{lang}").write_text("\n".join(lines) + "\n")
    return root


def _client() -> MlflowClient:
    return MlflowClient(f"sqlite:///{Path.cwd() / 'mlflow.db'}")


def _record(run_id: str) -> tuple[dict[str, float], dict[str, str]]:
    run = _client().get_run(run_id)
    return run.data.metrics, run.data.tags


def test_a_run_on_data_it_masters_stops_before_the_cap_and_records_convergence(tmp_path):
    data = _copy_task(tmp_path / "copy")
    model = [o for o in tiny() if o.startswith(("model.", "attention.", "trainer.enable", "task.attention"))]
    cfg = compose(
        [
            "data=parallel",
            f"data.root={data}",
            "data.src_lang=src",
            "data.tgt_lang=tgt",
            "data.bpe_vocab_size=40",
            "data.batch_size=16",
            *model,
            "task.lr=0.03",
            "task.beam_size=1",
            "trainer.max_epochs=80",
            "early_stopping.min_delta=0.5",
            "early_stopping.loss_min_delta=0.01",
            "early_stopping.patience=6",  # not translation's 12, made for the built-in data's long steps
        ]
    )
    result = train(cfg)
    metrics, tags = _record(result.run_id)
    assert metrics["run/converged"] == 1.0
    assert metrics["run/epochs"] < 80 and 1 <= metrics["run/best_epoch"] <= metrics["run/epochs"]
    history = _client().get_metric_history(result.run_id, "val/bleu")
    val_bleu = [m.value for m in sorted(history, key=lambda m: m.step)]
    # it did master the data before it stopped — at its best epoch: lr 0.03 makes the last epochs swing
    assert val_bleu[int(metrics["run/best_epoch"]) - 1] > 80
    assert tags["stop_reason"].startswith("plateau")
    assert result.metrics["run/converged"] == 1.0


def test_a_cap_too_small_is_recorded_as_not_converged():
    result = train(compose(tiny("trainer.max_epochs=2", "trainer.limit_train_batches=null", "task.lr=0.01")))
    metrics, tags = _record(result.run_id)
    assert metrics["run/converged"] == 0.0 and metrics["run/epochs"] == 2
    assert "epoch cap" in tags["stop_reason"] and "still improving" in tags["stop_reason"]


def test_early_stopping_can_be_turned_off_and_still_records_the_outcome():
    cfg = compose(tiny("trainer.max_epochs=3", "early_stopping.enabled=false", "early_stopping.patience=1"))
    metrics, _ = _record(train(cfg).run_id)
    assert metrics["run/epochs"] == 3  # trained to the cap whatever the curve did
    assert metrics["run/converged"] in (0.0, 1.0)


@pytest.mark.parametrize("key", ["early_stopping.patience=x", "early_stopping.monitr=val/bleu"])
def test_bad_early_stopping_keys_are_one_line_errors(key):
    from lightning_attn.config import ConfigError

    with pytest.raises(ConfigError, match="early_stopping"):
        compose([key])


@pytest.mark.parametrize(("task", "patience"), [("translation", 12), ("captioning", 3)])
def test_patience_defaults_to_the_tasks_own_and_is_recorded_in_the_config(task, patience):
    assert compose([f"task={task}"]).early_stopping.patience == patience


def test_a_set_patience_wins_over_the_tasks_and_the_multi30k_presets_keep_3():
    assert compose(["task=translation", "early_stopping.patience=2"]).early_stopping.patience == 2
    preset = compose(["experiment=multi30k_de_en", "data.root=/nonexistent"])
    assert preset.early_stopping.patience == 3 and preset.early_stopping.min_delta == 0.2
