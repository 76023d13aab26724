"""Images with captions listed in a table: CSV or TSV with a header, or JSON Lines (``.gz`` too) — a row per
caption (an image's rows together make its references) or, in JSON, a list of captions per row; an image path
relative to ``data.image_root``; a split column, or none: then validation and test images are carved from the
rest with a fixed seed, and the sizes said in one line. Images are decoded once into the cache Karpathy-format
data uses.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from omegaconf import MISSING

from .karpathy import Entry, KarpathySource, cached_splits
from .source import Captioned, DataError
from .table import carve, field_of, read_rows

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
        given = row.get(cfg["caption_field"])  # a JSON row may list several
        texts = given if isinstance(given, list) else [field_of(path, line, row, cfg["caption_field"])]
        captions = [str(c).lower().split() for c in texts if c]
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
    unsplit = [e for e in entries if not e.split]
    if unsplit:  # val and test images drawn from those without a split, the rest training
        dealt = carve(
            len(unsplit),
            ["val", "test"],
            share=cfg["carve_share"],
            seed=cfg["carve_seed"],
            where=str(path),
            unit="images",
        )
        for split, at in dealt.items():
            for i in at:
                unsplit[i].split = split
    return entries


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
