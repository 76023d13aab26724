"""Karpathy images at scale: decoded once into an on-disk cache read row by row, a frozen encoder's features
extracted once and reused, bad images still named before training."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from lightning_attn.data import DataError
from lightning_attn.data.cache import RowFile, RowFileWriter
from lightning_attn.data.captioning import CaptioningDataModule
from lightning_attn.data.karpathy import KarpathyDataConfig, read_karpathy

SPLITS = ("train", "train", "train", "val", "test")


def make_images(root: Path, n: int, size: int = 24, seed: int = 0) -> Path:
    """A Karpathy JSON over ``n`` generated JPEG images (noise over a colour gradient), captions of a few words."""
    folder = root / "images"
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    words = ["red", "green", "blue", "square", "circle", "left", "right", "top"]
    entries = []
    ramp = np.linspace(0, 200, size, dtype=np.float32)
    for i in range(n):
        base = (ramp[None, :, None] + rng.integers(0, 55, (size, 1, 3))).astype(np.float32)
        pixels = np.clip(base + rng.normal(0, 20, (size, size, 3)), 0, 255).astype(np.uint8)
        Image.fromarray(pixels).save(folder / f"img{i}.jpg", quality=90)
        caption = ["a", *rng.choice(words, size=3).tolist()]
        entries.append(
            {
                "filename": f"img{i}.jpg",
                "split": SPLITS[i % len(SPLITS)],
                "sentences": [{"tokens": caption}, {"tokens": caption[:2]}],
            }
        )
    path = root / "dataset.json"
    path.write_text(json.dumps({"images": entries}))
    return path


def data_config(json_path: Path, **overrides) -> dict:
    cfg = KarpathyDataConfig(
        json=str(json_path), image_root=str(json_path.parent / "images"), image_size=16, min_count=1, batch_size=8
    )
    return {**cfg.__dict__, **overrides}


def test_row_file_round_trip_and_incomplete_builds_leave_nothing(tmp_path):
    tmp_path = tmp_path / "store"
    tmp_path.mkdir()
    rows = np.arange(5 * 6, dtype=np.float16).reshape(5, 2, 3)
    with RowFileWriter(tmp_path / "x.f2", (2, 3), "float16") as out:
        for row in rows:
            out.append(row)
        store = out.commit("k1")
    again = RowFile.open(tmp_path / "x.f2", "k1")
    assert again is not None and len(again) == 5 and np.array_equal(again[3], rows[3])
    assert RowFile.open(tmp_path / "x.f2", "another key") is None  # built for something else: not reused
    with pytest.raises(RuntimeError), RowFileWriter(tmp_path / "y.f2", (2, 3), "float16") as out:
        out.append(rows[0])
        raise RuntimeError("interrupted")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.f2", "x.f2.json"]  # no half-written y
    assert store[0].shape == (2, 3)


def test_images_are_decoded_once_then_read_from_the_cache(tmp_path, monkeypatch):
    json_path = make_images(tmp_path, 10)
    first = read_karpathy(json_path, tmp_path / "images", size=16)
    import lightning_attn.data.karpathy as karpathy

    # from now on "decoding" (in the DataLoader's worker) yields black images: they show where it happened
    monkeypatch.setattr(karpathy, "load_image", lambda *a: np.zeros((16, 16, 3), np.uint8))
    second = read_karpathy(json_path, tmp_path / "images", size=16)
    pixels = second.splits["train"][2].image.load()
    assert pixels.any() and np.array_equal(first.splits["train"][2].image.load(), pixels)  # read, not decoded
    (tmp_path / "images" / "img3.jpg").write_bytes((tmp_path / "images" / "img4.jpg").read_bytes())  # changed
    third = read_karpathy(json_path, tmp_path / "images", size=16)
    assert not third.splits["train"][2].image.load().any()  # a changed image file invalidates the cache


def test_a_corrupt_image_in_a_large_set_is_named(tmp_path):
    json_path = make_images(tmp_path, 400, size=8)
    (tmp_path / "images" / "img333.jpg").write_bytes(b"\xff\xd8\xff not a jpeg")
    with pytest.raises(DataError, match=r"img333\.jpg: cannot read image"):
        read_karpathy(json_path, tmp_path / "images", size=8, workers=2)
    assert not list((tmp_path / "images" / ".lightning_attn_cache").glob("*.json"))  # no cache looks complete
    data = read_karpathy(json_path, tmp_path / "images", size=8, skip_bad_images=True, workers=2)
    assert len(data.skipped) == 1 and sum(len(v) for v in data.splits.values()) == 399


class Counting(torch.nn.Module):
    """A stand-in frozen backbone that counts the images it sees: ``(B, 3, S, S) -> (B, 4, 3)``."""

    def __init__(self):
        super().__init__()
        self.seen = 0

    def forward(self, images):
        self.seen += images.size(0)
        return torch.nn.functional.avg_pool2d(images, images.size(-1) // 2).flatten(2).transpose(1, 2)


def test_feature_cache_is_built_once_and_keyed_by_encoder(tmp_path):
    json_path = make_images(tmp_path, 20)
    data = CaptioningDataModule(data_config(json_path))
    data.setup()
    backbone = Counting()
    data.use_features(backbone, "encoder-a")
    assert backbone.seen == 20
    batch = next(iter(data.train_dataloader()))
    assert batch.images.shape[1:] == (4, 3) and batch.images.dtype == torch.float32

    again = CaptioningDataModule(data_config(json_path))
    again.setup()
    reused = Counting()
    again.use_features(reused, "encoder-a")
    assert reused.seen == 0  # the second run reads the cache
    first, second = data.splits["test"][0].image.load(), again.splits["test"][0].image.load()
    assert np.array_equal(first, second)

    other = CaptioningDataModule(data_config(json_path))
    other.setup()
    retrained = Counting()
    other.use_features(retrained, "encoder-b")  # other weights: other features
    assert retrained.seen == 20


def test_features_need_karpathy_data():
    data = CaptioningDataModule({**_digits(), "n_train": 8, "n_val": 4, "n_test": 4})
    data.setup()
    with pytest.raises(DataError, match="needs data=karpathy"):
        data.use_features(Counting(), "k")


def _digits() -> dict:
    from lightning_attn.data.digits import DigitsDataConfig

    return dict(DigitsDataConfig().__dict__)
