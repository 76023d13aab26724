"""Karpathy-split JSON + image folder: a tiny real dataset written by the test."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from lightning_attn.data import DataError
from lightning_attn.data.karpathy import read_karpathy


def make_dataset(root: Path, n: int = 6) -> Path:
    (root / "images" / "val2014").mkdir(parents=True)
    entries = []
    rng = np.random.default_rng(0)
    splits = ["train", "restval", "train", "val", "test", "test"]
    for i in range(n):
        name = f"img{i}.png"
        pixels = (rng.random((20, 30, 3)) * 255).astype(np.uint8)
        Image.fromarray(pixels).save(root / "images" / "val2014" / name)
        entries.append(
            {
                "filename": name,
                "filepath": "val2014",
                "split": splits[i % len(splits)],
                "sentences": [{"tokens": ["A", "red", "square"], "raw": "A red square."}, {"tokens": ["a", "box"]}],
            }
        )
    path = root / "dataset.json"
    path.write_text(json.dumps({"images": entries, "dataset": "tiny"}))
    return path


def test_reads_splits_images_and_captions(tmp_path):
    data = read_karpathy(make_dataset(tmp_path), tmp_path / "images", size=16)
    assert [len(data.splits[s]) for s in ("train", "val", "test")] == [3, 1, 2]  # restval joins train
    item = data.splits["train"][0]
    pixels = item.image.load()
    assert pixels.shape == (16, 16, 3) and pixels.dtype == np.uint8
    assert item.captions == [["a", "red", "square"], ["a", "box"]]
    assert not data.skipped


def test_missing_image_is_named_or_skipped(tmp_path):
    json_path = make_dataset(tmp_path)
    (tmp_path / "images" / "val2014" / "img2.png").unlink()
    with pytest.raises(DataError, match=r"img2\.png: missing image \(images\[2\].*skip_bad_images=true"):
        read_karpathy(json_path, tmp_path / "images", size=16)
    data = read_karpathy(json_path, tmp_path / "images", size=16, skip_bad_images=True)
    assert len(data.skipped) == 1 and len(data.splits["train"]) == 2


def test_corrupt_image_is_named_or_skipped(tmp_path):
    json_path = make_dataset(tmp_path)
    good = (tmp_path / "images" / "val2014" / "img0.png").read_bytes()
    (tmp_path / "images" / "val2014" / "img0.png").write_bytes(good[: len(good) // 2])  # truncated
    (tmp_path / "images" / "val2014" / "img4.png").write_bytes(b"not an image at all")
    with pytest.raises(DataError, match=r"img0\.png: cannot read image"):
        read_karpathy(json_path, tmp_path / "images", size=16)
    data = read_karpathy(json_path, tmp_path / "images", size=16, skip_bad_images=True)
    assert len(data.skipped) == 2
    assert [len(data.splits[s]) for s in ("train", "val", "test")] == [2, 1, 1]


def test_broken_json_names_line_and_column(tmp_path):
    path = tmp_path / "dataset.json"
    path.write_text('{"images": [\n  {"filename": "a.png",,}\n]}')
    with pytest.raises(DataError, match=r"dataset\.json:2:\d+: not valid JSON"):
        read_karpathy(path, tmp_path, size=16)


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ([], "expected an object with an 'images' list"),
        ({"images": [{"filename": "a.png", "split": "train"}]}, r"images\[0\] has no 'sentences'"),
        ({"images": [{"filename": "a.png", "split": "dev", "sentences": []}]}, "split 'dev' is not one of"),
        ({"images": [{"filename": "a.png", "split": "train", "sentences": [{"raw": "x"}]}]}, "needs a 'tokens' list"),
    ],
)
def test_malformed_entries_are_explained(tmp_path, payload, message):
    path = tmp_path / "dataset.json"
    path.write_text(json.dumps(payload))
    with pytest.raises(DataError, match=message):
        read_karpathy(path, tmp_path, size=16)


def test_a_split_without_images_is_an_error(tmp_path):
    json_path = make_dataset(tmp_path, n=3)  # train, restval, train: no val/test
    with pytest.raises(DataError, match="no usable images in the val split"):
        read_karpathy(json_path, tmp_path / "images", size=16)
