"""Karpathy-split JSON + image folder: a tiny real dataset written by the test."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from lightning_attn.data import DataError
from lightning_attn.data.karpathy import load_image, read_karpathy


def _picture(kind: str, rng: np.random.Generator) -> tuple[Image.Image, str]:
    """One test image of the kind a real dataset holds, and its file suffix."""
    if kind == "rgb":
        return Image.fromarray((rng.random((20, 30, 3)) * 255).astype(np.uint8)), "png"
    if kind == "rgba":  # other size, with an alpha channel
        return Image.fromarray((rng.random((33, 17, 4)) * 255).astype(np.uint8), "RGBA"), "png"
    if kind == "gray16":  # 16-bit grayscale, mid-grey to white
        return Image.fromarray((32768 + rng.random((20, 30)) * 32767).astype(np.uint16)), "png"
    if kind == "palette":  # palette colours, one of them transparent
        palette = Image.fromarray((rng.random((25, 25, 3)) * 255).astype(np.uint8)).convert("P")
        palette.info["transparency"] = 0
        return palette, "png"
    if kind == "gray":  # 8-bit grayscale, tall and thin
        return Image.fromarray((rng.random((40, 9)) * 255).astype(np.uint8), "L"), "png"
    if kind == "cmyk":  # a CMYK JPEG, as print-oriented photo archives hold
        return Image.fromarray((rng.random((24, 40, 3)) * 255).astype(np.uint8)).convert("CMYK"), "jpg"
    raise ValueError(kind)


#: the image kinds make_dataset cycles through (image i is of kind KINDS[i % 6])
KINDS = ("rgb", "rgba", "gray16", "palette", "gray", "cmyk")
#: the captions it cycles through: plain ASCII, then Latin-1 and CJK words
CAPTIONS = (
    [{"tokens": ["A", "red", "square"], "raw": "A red square."}, {"tokens": ["a", "box"]}],
    [{"tokens": ["une", "fenêtre", "ouverte"]}, {"tokens": ["ein", "weißes", "Café"]}],
    [{"tokens": ["猫", "が", "いる"]}, {"tokens": ["a", "cat", "naïve"]}],
)


def image_name(i: int) -> str:
    """The file name make_dataset gives image ``i``."""
    return f"img{i}.{'jpg' if KINDS[i % len(KINDS)] == 'cmyk' else 'png'}"


def make_dataset(root: Path, n: int = 6) -> Path:
    """A Karpathy-format dataset of ``n`` images of every kind in :data:`KINDS`, with non-ASCII captions."""
    (root / "images" / "val2014").mkdir(parents=True)
    entries = []
    rng = np.random.default_rng(0)
    splits = ["train", "restval", "train", "val", "test", "test"]
    for i in range(n):
        picture, _ = _picture(KINDS[i % len(KINDS)], rng)
        picture.save(root / "images" / "val2014" / image_name(i), **picture.info)
        entries.append(
            {
                "filename": image_name(i),
                "filepath": "val2014",
                "split": splits[i % len(splits)],
                "sentences": CAPTIONS[i % len(CAPTIONS)],
            }
        )
    path = root / "dataset.json"
    path.write_text(json.dumps({"images": entries, "dataset": "tiny"}, ensure_ascii=False), encoding="utf-8")
    return path


def test_reads_splits_images_and_captions(tmp_path):
    data = read_karpathy(make_dataset(tmp_path), tmp_path / "images", size=16)
    assert [len(data.splits[s]) for s in ("train", "val", "test")] == [3, 1, 2]  # restval joins train
    item = data.splits["train"][0]
    pixels = item.image.load()
    assert pixels.shape == (16, 16, 3) and pixels.dtype == np.uint8
    assert item.captions == [["a", "red", "square"], ["a", "box"]]
    assert data.splits["train"][1].captions == [["une", "fenêtre", "ouverte"], ["ein", "weißes", "café"]]
    assert not data.skipped


@pytest.mark.parametrize("kind", KINDS)
def test_every_image_kind_becomes_8_bit_rgb_of_its_content(tmp_path, kind):
    picture, suffix = _picture(kind, np.random.default_rng(1))
    path = tmp_path / f"x.{suffix}"
    picture.save(path, **picture.info)
    pixels = load_image(path, 16)
    assert pixels.shape == (16, 16, 3) and pixels.dtype == np.uint8
    assert pixels.std() > 5  # content, not one flat colour (Pillow's own 16-bit conversion gives all white)
    if kind == "gray16":  # values 32768-65535 of 65535: mid-grey to white, not clipped
        assert pixels.min() >= 128 and 170 < pixels.mean() < 210
    if kind in ("rgba", "palette"):  # transparency over white
        with Image.open(path) as im:
            alpha = np.asarray(im.convert("RGBA").resize((16, 16), Image.BILINEAR))[..., 3]
        assert pixels[alpha == 0].min(initial=255) >= 250


def test_exif_orientation_is_applied(tmp_path):
    tall = np.zeros((40, 20, 3), dtype=np.uint8)
    tall[:20] = 255  # top half white
    exif = Image.Exif()
    exif[0x0112] = 6  # stored rotated: shown after turning 90° clockwise
    Image.fromarray(tall).save(tmp_path / "turned.jpg", exif=exif)
    pixels = load_image(tmp_path / "turned.jpg", 20)
    assert pixels[:, 10:].mean() > 200 > 50 > pixels[:, :10].mean()  # white on the right once upright


def test_missing_image_is_named_or_skipped(tmp_path):
    json_path = make_dataset(tmp_path)
    (tmp_path / "images" / "val2014" / image_name(2)).unlink()
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
