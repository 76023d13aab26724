"""Image-caption data in the Karpathy-split JSON format (COCO, Flickr8k, Flickr30k).

::

    {"images": [{"filename": "x.jpg", "filepath": "val2014",      # filepath is optional (Flickr)
                 "split": "train" | "val" | "test" | "restval",   # restval counts as train
                 "sentences": [{"tokens": ["a", "dog", ...]}, ...]}, ...]}

Images live under ``image_root/[filepath/]filename``. Every image is decoded and resized once, when
the data is set up, so a missing or corrupt file is reported (or, with ``skip_bad_images``, counted
and skipped) before training starts — never in the middle of an epoch.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from omegaconf import MISSING

from .parallel import DataError


@dataclass
class KarpathyDataConfig:
    """COCO / Flickr8k / Flickr30k in the Karpathy-split JSON format."""

    kind: str = "karpathy"
    json: str = MISSING  # dataset_coco.json, dataset_flickr8k.json, ...
    image_root: str = MISSING
    image_size: int = 128
    min_count: int = 5  # words rarer than this in the train captions become <unk>
    max_caption_len: int = 30  # longer training captions are dropped
    skip_bad_images: bool = False  # count and skip missing/corrupt images instead of stopping
    batch_size: int = 32
    num_workers: int = 0


log = logging.getLogger(__name__)

SPLITS = {"train": "train", "restval": "train", "val": "val", "test": "test"}


@dataclass
class CaptionedImage:
    """An image (``(size, size, 3)`` uint8) and its tokenised reference captions."""

    image: np.ndarray
    captions: list[list[str]]
    path: Path


@dataclass
class KarpathyData:
    splits: dict[str, list[CaptionedImage]]
    skipped: list[str] = field(default_factory=list)  # "path: reason" of every skipped image


def _entries(json_path: Path) -> list[dict]:
    try:
        text = json_path.read_text(encoding="utf-8")
    except OSError as e:
        raise DataError(f"{json_path}: cannot read ({e.strerror or e})") from None
    except UnicodeDecodeError as e:
        raise DataError(f"{json_path}: not UTF-8 ({e.reason} at byte {e.start})") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise DataError(f"{json_path}:{e.lineno}:{e.colno}: not valid JSON ({e.msg})") from None
    if not isinstance(data, dict) or not isinstance(data.get("images"), list):
        raise DataError(f"{json_path}: expected an object with an 'images' list (the Karpathy split format)")
    return data["images"]


def _captions(json_path: Path, index: int, entry: dict) -> list[list[str]]:
    where = f"{json_path}: images[{index}]"
    for key in ("filename", "split", "sentences"):
        if key not in entry:
            raise DataError(f"{where} has no {key!r}")
    if entry["split"] not in SPLITS:
        raise DataError(f"{where}: split {entry['split']!r} is not one of {', '.join(SPLITS)}")
    captions = []
    for j, sentence in enumerate(entry["sentences"]):
        tokens = sentence.get("tokens") if isinstance(sentence, dict) else None
        if not isinstance(tokens, list) or not all(isinstance(t, str) for t in tokens):
            raise DataError(f"{where}.sentences[{j}] needs a 'tokens' list of strings")
        if tokens:
            captions.append([t.lower() for t in tokens])
    if not captions:
        raise DataError(f"{where} has no non-empty caption")
    return captions


def load_image(path: Path, size: int) -> np.ndarray:
    """Decode fully (so truncated files fail here) and resize to ``(size, size, 3)`` uint8."""
    from PIL import Image

    with Image.open(path) as im:
        return np.array(im.convert("RGB").resize((size, size), Image.BILINEAR), dtype=np.uint8)  # a writable copy


def read_karpathy(
    json_path: str | Path, image_root: str | Path, size: int, skip_bad_images: bool = False
) -> KarpathyData:
    """All splits of a Karpathy-format dataset, images decoded and resized.

    Args:
        json_path: the ``dataset_*.json`` file.
        image_root: the folder the ``filepath``/``filename`` of each entry are relative to.
        size: side of the square the images are resized to.
        skip_bad_images: count and skip missing or unreadable images instead of stopping.

    Raises:
        DataError: naming the file (and entry, or line and column for broken JSON).
    """
    json_path, image_root = Path(json_path), Path(image_root)
    data = KarpathyData({"train": [], "val": [], "test": []})
    for index, entry in enumerate(_entries(json_path)):
        if not isinstance(entry, dict):
            raise DataError(f"{json_path}: images[{index}] is not an object")
        captions = _captions(json_path, index, entry)
        path = image_root / entry.get("filepath", "") / entry["filename"]
        try:
            image = load_image(path, size)
        except FileNotFoundError:
            problem = f"{path}: missing image (images[{index}] in {json_path})"
        except Exception as e:  # Pillow raises many types for corrupt files
            problem = f"{path}: cannot read image ({type(e).__name__}: {e})"
        else:
            data.splits[SPLITS[entry["split"]]].append(CaptionedImage(image, captions, path))
            continue
        if not skip_bad_images:
            raise DataError(problem + "; set data.skip_bad_images=true to skip such images")
        data.skipped.append(problem)
    if data.skipped:
        log.warning("skipped %d unreadable images, first: %s", len(data.skipped), data.skipped[0])
    for split, items in data.splits.items():
        if not items:
            raise DataError(f"{json_path}: no usable images in the {split} split")
    return data
