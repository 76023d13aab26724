"""The issue's acceptance figures, on the defaults a user gets (minutes each: `pytest -m slow`)."""

from __future__ import annotations

import pytest

from lightning_attn.config import compose
from lightning_attn.train import train

pytestmark = pytest.mark.slow


@pytest.mark.parametrize(
    ("mechanism", "low", "high"),
    [("soft", 90.0, 100.0), ("hard", 80.0, 100.0), ("uniform", 0.0, 60.0)],
)
def test_default_translation_run_reaches_its_bleu(mechanism, low, high):
    result = train(compose([f"attention={mechanism}", "trainer.enable_progress_bar=false"]))
    assert low <= result.metrics["test/bleu"] <= high


def _slice(source, target, pairs: int, langs=("de", "en")) -> None:
    """The first ``pairs`` lines of every split of Multi30k, as plain files (``split.lang``)."""
    import gzip

    target.mkdir(parents=True, exist_ok=True)
    for split in ("train", "val", "test_2016_flickr"):
        for lang in langs:
            with gzip.open(source / f"{split}.{lang}.gz", "rt", encoding="utf-8") as f:
                lines = [next(f) for _ in range(pairs if split == "train" else pairs // 10)]
            (target / f"{split}.{lang}").write_text("".join(lines), encoding="utf-8")


def test_multi30k_preset_trains_on_a_slice(multi30k, tmp_path):
    """The real-text path stays alive: the De->En preset, one short epoch on 2,000 pairs, BLEU above a floor."""
    _slice(multi30k, tmp_path / "m30k", 2000)
    cfg = compose(
        [
            "experiment=multi30k_de_en",
            f"data.root={tmp_path / 'm30k'}",
            "data.bpe_vocab_size=2000",
            "trainer.max_epochs=1",
            "trainer.enable_progress_bar=false",
            "task.beam_size=2",
        ]
    )
    result = train(cfg)
    assert result.metrics["test/bleu"] > 1.0, result.metrics
    assert result.metrics["speed/train_tokens_per_s"] > 0
