"""Data sources: each kind of data a task reads (``kind`` in ``conf/data/*.yaml``) is one class here.

A source owns its config schema (``schema``) and how its splits are read; a task's DataModule turns what
a source reads into batches, whichever source it is. Two families:

* :class:`TextPairSource` — sentence pairs (translation): the built-in synthetic language
  (:class:`~lightning_attn.data.synthetic.SyntheticSource`), parallel text files
  (:class:`~lightning_attn.data.parallel.ParallelSource`);
* :class:`CaptionSource` — images with captions (captioning): the built-in digit scenes
  (:class:`~lightning_attn.data.digits.DigitsSource`), Karpathy-format JSON
  (:class:`~lightning_attn.data.karpathy.KarpathySource`).

Adding a source: a class in the module of its data, and one line of
:data:`lightning_attn.data.registry.DATA` (or, from outside the package, a plugin that adds it there).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, ClassVar

from .codec import Codec


class DataError(ValueError):
    """Missing or malformed data: the message names the file (and line, entry) and what is wrong."""


class DataSource:
    """One kind of data.

    Attributes:
        schema: the ``data`` section's config dataclass for this kind.
        builtin: generated in memory (no files): what a run records as its source.

    Args:
        cfg: the ``data`` config section, as a dict.
    """

    schema: ClassVar[type]
    builtin: ClassVar[bool] = False

    def __init__(self, cfg: dict):
        self.cfg = cfg

    @property
    def location(self) -> str:
        """Where the data comes from, for people and run records: a path, or ``built-in``."""
        return "built-in"


#: a split of sentence pairs: sources, targets, and per pair its gold alignment (or None)
Texts = tuple[list[str], list[str], Iterable[list[int] | None]]


class TextPairSource(DataSource):
    """Sentence pairs: ``train``/``val``/``test`` splits, and any split by name for evaluation."""

    def read(self) -> dict[str, Texts]:
        """The ``train``, ``val`` and ``test`` splits."""
        raise NotImplementedError

    def vocabularies(self, texts: dict[str, Texts]) -> tuple[Codec, Codec]:
        """The source and target vocabularies, built from the training split of ``texts``."""
        raise NotImplementedError

    def evaluation(self, split: str | None) -> tuple[str, Texts]:
        """The split ``split`` names (default: the test split) as ``(its name, its texts)``.

        Raises:
            DataError: no such split, naming the valid ones.
        """
        raise NotImplementedError


@dataclass
class Captioned:
    """An image and its captions, as a source reads them.

    Attributes:
        image: ``(C, S, S)`` float tensor in [0, 1], or a lazily read cache row (:class:`~.karpathy.ImageRow`).
        captions: every reference caption, as whitespace-separated words.
        regions: the gold layout cell of each word of the (only) caption, -1 where none (built-in scenes).
    """

    image: Any
    captions: list[str]
    regions: list[int] | None = None


class CaptionSource(DataSource):
    """Images with captions.

    Attributes (after :meth:`read` where they depend on the data): ``channels`` and ``image_size`` of the
    images, ``layout_grid`` (cells per side of a gold layout, else ``None``), ``min_count`` (words seen
    fewer times become ``<unk>``), ``max_caption_len`` (longer training captions are dropped; ``None``:
    none), ``images`` (an image cache a frozen encoder's features can be extracted from, else ``None``),
    ``skipped`` (images that could not be read).
    """

    channels: int = 3
    layout_grid: int | None = None
    min_count: int = 1
    max_caption_len: int | None = None

    def __init__(self, cfg: dict):
        super().__init__(cfg)
        self.images: Any = None
        self.skipped: list[str] = []

    @property
    def image_size(self) -> int:
        return self.cfg["image_size"]

    def read(self, splits: tuple[str, ...]) -> dict[str, list[Captioned]]:
        """The named splits (names as :meth:`evaluation_splits` maps them)."""
        raise NotImplementedError

    def evaluation_splits(self) -> dict[str, str]:
        """The split names ``evaluate split=NAME`` accepts -> the split read for each."""
        return {"train": "train", "val": "val", "test": "test"}
