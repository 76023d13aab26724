"""Images with captions listed in a table: CSV or TSV with a header, or JSON Lines (``.gz`` too) — a row per
caption (an image's rows together make its references) or, in JSON, a list of captions per row; an image path
relative to ``data.image_root``; a split column, or none: then validation and test images are carved from the
rest with a fixed seed, and the sizes said in one line. Images are decoded once into the cache Karpathy-format
data uses.
"""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass
from pathlib import Path

from omegaconf import MISSING

from .karpathy import Entry, KarpathySource, cached_splits
from .source import Captioned, DataError
from .table import field_of, read_rows

log = logging.getLogger(__name__)

SPLITS = ("train", "val", "test")


@dataclass
class CaptionTableDataConfig:
    """Images with captions listed in a CSV/TSV (with a header) or JSON Lines file."""

    kind: str = "caption_table"
    file: str = MISSING  # the listing
    image_root: str = MISSING  # what the image paths are relative to
    image_field: str = "image"
    caption_field: str = "caption"  # a caption (a row each), or in JSON Lines also a list of captions
    split_field: str = "split"  # train | val | test; a listing without it: val and test carved from the images
    carve_share: float = 0.05  # of the images, for each split carved (at least one image)
    carve_seed: int = 0
    image_size: int = 128
    min_count: int = 5  # words rarer than this in the train captions become <unk>
    max_caption_len: int = 30  # longer training captions are dropped
    skip_bad_images: bool = False  # count and skip missing/corrupt images instead of stopping
    cache_dir: str | None = None  # the decoded-image cache: default next to the images, else ~/.cache
    batch_size: int = 32
    num_workers: int = 0


def read_caption_table(path: Path, image_root: Path, cfg: dict) -> list[Entry]:
    """Every image of the listing with its split and captions (tokens, lowercased); images are not opened.

    Raises:
        DataError: a row (named by file and line) without an image or caption, or with an unknown split.
    """
    images: dict[str, Entry] = {}
    for line, row in read_rows(path):
        image = field_of(path, line, row, cfg["image_field"])
        given = row.get(cfg["caption_field"])
        if given is None:
            field_of(path, line, row, cfg["caption_field"])  # says which
        captions = [str(c).lower().split() for c in (given if isinstance(given, list) else [given])]
        split = str(row.get(cfg["split_field"]) or "").strip() or None
        if split is not None and split not in SPLITS:
            raise DataError(f"{path}:{line}: split {split!r} is not one of {', '.join(SPLITS)}")
        entry = images.setdefault(image, Entry(len(images), image_root / image, split or "", []))
        if split and entry.split and split != entry.split:
            raise DataError(f"{path}:{line}: {image} is in {entry.split} on an earlier line, here in {split}")
        entry.split = entry.split or split or ""
        entry.captions += [c for c in captions if c]
    entries = list(images.values())
    for entry in entries:
        if not entry.captions:
            raise DataError(f"{path}: {entry.path.name} has no non-empty caption")
    if any(not e.split for e in entries):
        _carve([e for e in entries if not e.split], share=cfg["carve_share"], seed=cfg["carve_seed"], path=path)
    return entries


def _carve(entries: list[Entry], *, share: float, seed: int, path: Path) -> None:
    """Validation and test images drawn from ``entries`` (those without a split), the rest training; said."""
    order = list(range(len(entries)))
    random.Random(seed).shuffle(order)
    size = max(1, round(share * len(entries)))
    if 2 * size >= len(entries):
        raise DataError(f"{path}: {len(entries)} images without a split are too few to carve val and test from")
    for rank, i in enumerate(order):
        entries[i].split = "val" if rank < size else "test" if rank < 2 * size else "train"
    sizes = {s: sum(e.split == s for e in entries) for s in SPLITS}
    log.warning(
        "val and test carved from %s with seed %d: %s images",
        path,
        seed,
        ", ".join(f"{s} {n}" for s, n in sizes.items()),
    )


class CaptionTableSource(KarpathySource):
    """Images with captions listed in a table; decoded once into the image cache, read lazily."""

    schema = CaptionTableDataConfig

    @property
    def location(self) -> str:
        return str(Path(self.cfg["file"]).expanduser())

    def read(self, splits: tuple[str, ...]) -> dict[str, list[Captioned]]:
        c = self.cfg
        path, image_root = Path(c["file"]).expanduser(), Path(c["image_root"]).expanduser()
        data = cached_splits(
            read_caption_table(path, image_root, c),
            path,
            image_root,
            c["image_size"],
            skip_bad_images=c["skip_bad_images"],
            cache_dir=c["cache_dir"],
            workers=c["num_workers"],
        )
        return self.captioned(data, splits)

    def evaluation_splits(self) -> dict[str, str]:
        return {s: s for s in SPLITS}
