"""Image-caption data in the Karpathy-split JSON format (COCO, Flickr8k, Flickr30k).

::

    {"images": [{"filename": "x.jpg", "filepath": "val2014",      # filepath is optional (Flickr)
                 "split": "train" | "val" | "test" | "restval",   # restval counts as train
                 "sentences": [{"tokens": ["a", "dog", ...]}, ...]}, ...]}

Images live under ``image_root/[filepath/]filename``. They are decoded and resized **once**, into a
uint8 cache on disk (:class:`~lightning_attn.data.cache.RowFile`, keyed by the JSON, the image files'
sizes and times, and the image size) that training then reads row by row — never the whole set in
memory, whatever its size. Building the cache is what finds a missing or corrupt file, so that is
reported (or, with ``skip_bad_images``, counted and skipped) before training starts, never in the
middle of an epoch; the DataLoader's workers (``num_workers``) decode in parallel.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from omegaconf import MISSING
from torch.utils.data import DataLoader, Dataset

from .cache import RowFile, RowFileWriter, cache_folder, digest
from .source import Captioned, CaptionSource, DataError


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
    # the decoded-image cache (and a frozen encoder's feature cache): default next to the images, else ~/.cache
    cache_dir: str | None = None
    batch_size: int = 32
    num_workers: int = 0  # DataLoader workers; building the image cache uses at least 1


log = logging.getLogger(__name__)

SPLITS = {"train": "train", "restval": "train", "val": "val", "test": "test"}


@dataclass
class ImageRow:
    """A lazily read image: row ``row`` of a cache (``(size, size, 3)`` uint8, or a feature grid)."""

    store: RowFile
    row: int

    def load(self) -> np.ndarray:
        return self.store[self.row]


@dataclass
class CaptionedImage:
    """An image (read on demand) and its tokenised reference captions."""

    image: ImageRow
    captions: list[list[str]]
    path: Path


@dataclass
class KarpathyData:
    splits: dict[str, list[CaptionedImage]]
    skipped: list[str] = field(default_factory=list)  # "path: reason" of every skipped image
    store: RowFile | None = None  # the decoded images


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


#: Pillow's modes whose values are wider than 8 bits (16-bit grayscale PNGs, 32-bit integers, floats)
WIDE_MODES = ("I;16", "I;16L", "I;16B", "I;16N", "I", "F")


def load_image(path: Path, size: int) -> np.ndarray:
    """Decode fully (so truncated files fail here), stand the image upright (its EXIF orientation), make it
    8-bit RGB (:func:`to_rgb`) and resize it to ``(size, size, 3)`` uint8."""
    from PIL import Image, ImageOps

    with Image.open(path) as im:
        im.load()
        upright = ImageOps.exif_transpose(im)
        return np.array(to_rgb(upright).resize((size, size), Image.BILINEAR), dtype=np.uint8)  # a writable copy


def to_rgb(im):
    """Any Pillow image as 8-bit RGB: grayscale, palette and CMYK converted; wider values (16-bit grayscale,
    ``I``, ``F``) scaled into 0-255 rather than clipped (Pillow's own conversion turns a 16-bit photo white);
    transparent pixels laid over white rather than over whatever colour they hide."""
    from PIL import Image

    if im.mode in WIDE_MODES:
        values = np.asarray(im, dtype=np.float64)
        peak = float(values.max()) if values.size else 0.0
        sixteen_bit = im.mode.startswith("I;16") or peak > 255
        top = 65535.0 if sixteen_bit else (1.0 if im.mode == "F" and peak <= 1.0 else 255.0)
        im = Image.fromarray(np.clip(values * (255.0 / top) + 0.5, 0, 255).astype(np.uint8), "L")
    if im.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in im.info:
        rgba = im.convert("RGBA")
        im = Image.alpha_composite(Image.new("RGBA", rgba.size, (255, 255, 255, 255)), rgba)
    return im.convert("RGB")


@dataclass
class Entry:
    """One image of the JSON: where it is, its split and captions (nothing decoded)."""

    index: int  # position in the JSON's images list
    path: Path
    split: str
    captions: list[list[str]]


def read_entries(json_path: Path, image_root: Path) -> list[Entry]:
    """Every entry of a Karpathy JSON, checked; images are not opened."""
    entries = []
    for index, entry in enumerate(_entries(json_path)):
        if not isinstance(entry, dict):
            raise DataError(f"{json_path}: images[{index}] is not an object")
        captions = _captions(json_path, index, entry)
        path = image_root / entry.get("filepath", "") / entry["filename"]
        entries.append(Entry(index, path, SPLITS[entry["split"]], captions))
    return entries


class _Decode(Dataset):
    """Decodes entry ``i`` (in a DataLoader worker): ``(i, pixels or None, problem or None)``."""

    def __init__(self, entries: list[Entry], size: int, json_path: Path):
        self.entries, self.size, self.json_path = entries, size, json_path

    def __len__(self) -> int:
        return len(self.entries)

    def __getitem__(self, i: int) -> tuple[int, np.ndarray | None, str | None]:
        entry = self.entries[i]
        try:
            return i, load_image(entry.path, self.size), None
        except FileNotFoundError:
            return i, None, f"{entry.path}: missing image (images[{entry.index}] in {self.json_path})"
        except Exception as e:  # Pillow raises many types for corrupt files
            return i, None, f"{entry.path}: cannot read image ({type(e).__name__}: {e})"


def _as_is(item):
    return item


def _stat(path: Path) -> tuple[int, int] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return st.st_size, st.st_mtime_ns


def image_cache(
    entries: list[Entry], json_path: Path, size: int, *, folder: Path, skip_bad_images: bool, workers: int
) -> tuple[RowFile, list[int], list[str]]:
    """The decoded images of ``entries``: built once (decoding in ``workers`` processes), then reused while
    the JSON, the image files and the size are unchanged.

    Returns:
        the cache, the entries it holds (indices into ``entries``; its rows in that order) and the problems
        of the images skipped.

    Raises:
        DataError: the first missing or unreadable image, unless ``skip_bad_images``.
    """
    json_digest = hashlib.sha256(json_path.read_bytes()).hexdigest()
    key = digest("images", json_digest, size, [(str(e.path), _stat(e.path)) for e in entries])
    path = folder / f"images-{size}px-{key}.u8"
    store = RowFile.open(path, key)
    if store is not None:
        log.info("using the image cache %s (%d images)", path, len(store))
        return store, store.meta["entries"], store.meta["skipped"]
    kept: list[int] = []
    skipped: list[str] = []
    # its own generator: building the cache must not draw from the global RNG, or a model initialised
    # after it would differ between the run that built the cache and the runs that reuse it
    loader = DataLoader(
        _Decode(entries, size, json_path),
        batch_size=None,
        num_workers=max(1, workers),
        collate_fn=_as_is,
        generator=torch.Generator(),
    )
    started, last = time.monotonic(), time.monotonic()
    with RowFileWriter(path, (size, size, 3), "uint8") as out:
        for done, (i, pixels, problem) in enumerate(loader, start=1):
            if problem is not None:
                if not skip_bad_images:
                    raise DataError(problem + "; set data.skip_bad_images=true to skip such images")
                skipped.append(problem)
                continue
            out.append(pixels)
            kept.append(i)
            if time.monotonic() - last > 10:  # long work shows progress
                last = time.monotonic()
                log.info(
                    "decoding images into the cache: %d / %d (%.0f per second)",
                    done,
                    len(entries),
                    done / (last - started),
                )
        store = out.commit(key, {"entries": kept, "skipped": skipped, "json": str(json_path)})
    log.info("built the image cache %s: %d images in %.0f s", path, len(kept), time.monotonic() - started)
    return store, kept, skipped


def read_karpathy(
    json_path: str | Path,
    image_root: str | Path,
    size: int,
    *,
    skip_bad_images: bool = False,
    cache_dir: str | None = None,
    workers: int = 0,
) -> KarpathyData:
    """All splits of a Karpathy-format dataset; images decoded and resized into the cache (once).

    Args:
        json_path: the ``dataset_*.json`` file.
        image_root: the folder the ``filepath``/``filename`` of each entry are relative to.
        size: side of the square the images are resized to.
        skip_bad_images: count and skip missing or unreadable images instead of stopping.
        cache_dir: where the decoded images go (default: next to the images, else the user's cache).
        workers: processes decoding images while the cache is built.

    Raises:
        DataError: naming the file (and entry, or line and column for broken JSON).
    """
    json_path, image_root = Path(json_path), Path(image_root)
    entries = read_entries(json_path, image_root)
    return cached_splits(
        entries, json_path, image_root, size, skip_bad_images=skip_bad_images, cache_dir=cache_dir, workers=workers
    )


def cached_splits(
    entries: list[Entry],
    listing: Path,
    image_root: Path,
    size: int,
    *,
    skip_bad_images: bool,
    cache_dir: str | None,
    workers: int,
) -> KarpathyData:
    """``entries`` (listed in the file ``listing``) as splits of lazily read images, decoded into the cache once."""
    folder = cache_folder(image_root, cache_dir)
    store, kept, skipped = image_cache(
        entries, listing, size, folder=folder, skip_bad_images=skip_bad_images, workers=workers
    )
    data = KarpathyData({"train": [], "val": [], "test": []}, skipped, store)
    for row, i in enumerate(kept):
        entry = entries[i]
        data.splits[entry.split].append(CaptionedImage(ImageRow(store, row), entry.captions, entry.path))
    if data.skipped:
        log.warning("skipped %d unreadable images, first: %s", len(data.skipped), data.skipped[0])
    for split, items in data.splits.items():
        if not items:
            raise DataError(f"{listing}: no usable images in the {split} split")
    return data


class KarpathySource(CaptionSource):
    """A Karpathy-format dataset (COCO, Flickr8k/30k): images decoded once into a cache and read lazily,
    every caption of an image a reference; ``restval`` images train."""

    schema = KarpathyDataConfig

    @property
    def location(self) -> str:
        return str(Path(self.cfg["json"]).expanduser())

    @property
    def min_count(self) -> int:
        return self.cfg["min_count"]

    @property
    def max_caption_len(self) -> int:
        return self.cfg["max_caption_len"]

    def read(self, splits: tuple[str, ...]) -> dict[str, list[Captioned]]:
        c = self.cfg
        data = read_karpathy(
            c["json"],
            c["image_root"],
            c["image_size"],
            skip_bad_images=c["skip_bad_images"],
            cache_dir=c["cache_dir"],
            workers=c["num_workers"],
        )
        return self.captioned(data, splits)

    def captioned(self, data: KarpathyData, splits: tuple[str, ...]) -> dict[str, list[Captioned]]:
        """``splits`` of ``data`` as the task reads them; the cache and the skipped images kept on the source."""
        self.skipped, self.images = data.skipped, data.store
        return {
            split: [Captioned(item.image, [" ".join(t) for t in item.captions]) for item in data.splits[split]]
            for split in splits
        }

    def evaluation_splits(self) -> dict[str, str]:
        return dict(SPLITS)
