"""Captioning: tiny runs recorded in MLflow, attention pictures, alignment accuracy (every data source with
the default settings: tests/test_defaults.py)."""

from __future__ import annotations

import pytest
import torch
from mlflow import MlflowClient

from lightning_attn.attention import MECHANISMS
from lightning_attn.config import compose
from lightning_attn.tasks.captioning import CaptioningModule, cider_d
from lightning_attn.train import train

from ..helpers import every_mechanism

TINY = [
    "task=captioning",
    "data.n_train=64",
    "data.n_val=16",
    "data.n_test=16",
    "data.batch_size=16",
    "model.channels=[8,8,16,16]",
    "model.hidden=32",
    "model.embed_dim=16",
    "trainer.max_epochs=1",
    "trainer.limit_train_batches=2",
    "trainer.enable_progress_bar=false",
    "task.beam_size=2",
    "task.max_decode_len=8",  # untrained models decode to the cap: the default 30 only costs time here
    "task.attention_pictures_every=0",  # the pictures test turns them on
]


@pytest.mark.parametrize("mechanism", every_mechanism(fast=("soft",)))
def test_tiny_captioning_run_is_recorded(mechanism):
    result = train(compose([*TINY, f"attention={mechanism}"]))
    run = MlflowClient(result.tracking_uri).get_run(result.run_id)
    assert run.info.status == "FINISHED"
    assert run.data.tags["task"] == "captioning" and run.data.params["data.kind"] == "digits"
    for metric in ("test/bleu1", "test/bleu4", "test/cider", "test/exact", "test/align_acc", "val/bleu4"):
        assert metric in run.data.metrics, metric
    assert 0 <= run.data.metrics["test/exact"] <= 100


# one mechanism per picture style: a heat map of a distribution, or the one region a mechanism reads
PICTURE_STYLES = {cls.selects_one: name for name, (cls, _) in sorted(MECHANISMS.items()) if not cls.control}


@pytest.mark.parametrize("mechanism", sorted(PICTURE_STYLES.values()))
def test_attention_pictures_are_mlflow_artifacts(mechanism, tmp_path):
    from PIL import Image

    result = train(
        compose([*TINY, f"attention={mechanism}", "task.attention_pictures_every=1", "task.attention_pictures=2"])
    )
    client = MlflowClient(result.tracking_uri)
    files = [a.path for a in client.list_artifacts(result.run_id, "attention/epoch_001")]
    assert files == ["attention/epoch_001/val_0.png", "attention/epoch_001/val_1.png"]
    local = client.download_artifacts(result.run_id, files[0], str(tmp_path))
    with Image.open(local) as picture:
        assert picture.size[0] > 200 and picture.getextrema() != ((255, 255),) * 3  # a real, non-blank picture


def test_doubly_stochastic_penalty_is_trained_and_logged():
    result = train(compose([*TINY, "task.doubly_stochastic=1.0"]))
    history = MlflowClient(result.tracking_uri).get_metric_history(result.run_id, "train/doubly_stochastic_epoch")
    assert history and history[-1].value > 0


def module(layout_grid: int = 4) -> CaptioningModule:
    cfg = compose(["task=captioning", "model.channels=[8,8,8,8]"])
    sections = [dict(cfg[s]) for s in ("task", "model", "attention")]
    return CaptioningModule(*sections, vocab=10, channels=1, image_size=64, layout_grid=layout_grid)


def test_alignment_is_one_for_oracle_and_chance_for_uniform_attention():
    m = module()
    gold = torch.randint(0, 16, (200, 12))
    oracle = torch.nn.functional.one_hot(gold, 16).float()
    assert (m.attended_gold_index(oracle) == gold).float().mean() == 1.0
    uniform = torch.full((200, 12, 16), 1 / 16)
    assert (m.attended_gold_index(uniform) == gold).float().mean() < 0.15  # chance is 1/16


def test_regions_map_to_layout_cells_when_grids_differ():
    m = module(layout_grid=2)  # 4x4 encoder regions over a 2x2 layout
    assert m.region_to_cell.view(4, 4).tolist() == [[0, 0, 1, 1], [0, 0, 1, 1], [2, 2, 3, 3], [2, 2, 3, 3]]


def test_cider_d_rewards_the_right_caption():
    refs = [["two top left , five bottom right"], ["seven top left"]]
    good = cider_d(["two top left , five bottom right", "seven top left"], refs)
    bad = cider_d(["nine top right", "one bottom left , one top left"], refs)
    assert good > 1.0 > bad >= 0.0


def test_the_report_resamples_the_bleu4_the_table_shows():
    from lightning_attn.report import collect
    from lightning_attn.report.significance import ITEM_STATISTICS

    # long enough to match 4-grams (about 15 BLEU-4): agreement at 0 would prove nothing
    learns = [
        "data.n_train=512",
        "data.n_test=32",
        "data.batch_size=32",
        "trainer.max_epochs=4",
        "task.lr=3e-3",
        "trainer.limit_train_batches=null",
        "early_stopping.enabled=false",
    ]
    result = train(compose([*TINY, "attention=soft", *learns]))
    (run,) = collect.collect(result.tracking_uri, None, None).runs
    assert run.tags["metric.item_statistics"] == "bleu4"
    hypotheses, references = collect.predictions([run])[run.run_id]
    statistic = ITEM_STATISTICS["bleu4"]
    resampled = float(statistic.score(statistic.items(hypotheses, references).sum(0)))
    assert run.metrics["test/bleu4"] > 0 and abs(resampled - run.metrics["test/bleu4"]) < 0.01
