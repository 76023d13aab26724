"""``CaptioningDataModule``: built-in digit scenes or a Karpathy-format dataset, as padded batches."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import torch
from torch import Tensor

from .base import SplitDataModule
from .codec import BOS, EOS, PAD, Codec
from .digits import DigitsDataConfig, generate_scenes
from .karpathy import read_karpathy

log = logging.getLogger(__name__)


@dataclass
class CaptionItem:
    image: Tensor  # (C, S, S) float
    caption: list[int]  # target ids, without <s> / </s>
    references: list[str]  # every reference caption of the image, as text
    regions: list[int] | None = None  # gold layout cell per caption word (built-in data), -1 where none


@dataclass
class CaptionBatch:
    """Attributes:
    images: ``(B, C, S, S)``.
    tgt_in, tgt_out: ``(B, T)`` ``<s> w_1 … w_n`` and ``w_1 … w_n </s>``.
    references: per image, its reference captions.
    alignment: ``(B, T)`` gold layout cell per ``tgt_out`` word, -1 where none.
    """

    images: Tensor
    tgt_in: Tensor
    tgt_out: Tensor
    references: list[list[str]]
    alignment: Tensor

    def __len__(self) -> int:
        return self.images.size(0)


def collate(items: list[CaptionItem]) -> CaptionBatch:
    batch, length = len(items), max(len(i.caption) for i in items) + 1
    tgt_in = torch.full((batch, length), PAD, dtype=torch.long)
    tgt_out = torch.full((batch, length), PAD, dtype=torch.long)
    alignment = torch.full((batch, length), -1, dtype=torch.long)
    for b, item in enumerate(items):
        n = len(item.caption)
        tgt_in[b, : n + 1] = torch.tensor([BOS, *item.caption])
        tgt_out[b, : n + 1] = torch.tensor([*item.caption, EOS])
        if item.regions is not None:
            alignment[b, :n] = torch.tensor(item.regions)
    images = torch.stack([i.image for i in items])
    return CaptionBatch(images, tgt_in, tgt_out, [i.references for i in items], alignment)


class CaptioningDataModule(SplitDataModule):
    """Args:
    data: a data config section (``kind: digits`` or ``kind: karpathy``) as a dict.

    Attributes (after :meth:`setup`): ``codec`` (caption vocabulary), ``channels``, ``image_size``,
    ``layout_grid`` (cells per side of the built-in layout, else ``None``), ``skipped`` (bad images).
    """

    collate = staticmethod(collate)

    def __init__(self, data: dict):
        super().__init__(data)
        self.codec: Codec | None = None
        self.layout_grid: int | None = None
        self.skipped: list[str] = []

    @property
    def channels(self) -> int:
        return 1 if self.cfg["kind"] == "digits" else 3

    @property
    def image_size(self) -> int:
        return self.cfg["canvas"] if self.cfg["kind"] == "digits" else self.cfg["image_size"]

    def setup(self, stage: str | None = None) -> None:
        if self.splits:
            return
        if self.cfg["kind"] == "digits":
            self._setup_digits()
        else:
            self._setup_karpathy()
        sizes = ", ".join(f"{k} {len(v)}" for k, v in self.splits.items())
        log.info("data: %s examples; vocabulary %d words", sizes, len(self.codec))

    def _setup_digits(self) -> None:
        c = self.cfg
        sizes = {"train": c["n_train"], "val": c["n_val"], "test": c["n_test"]}
        config = DigitsDataConfig(**c)
        scenes = {split: generate_scenes(n, split, config) for split, n in sizes.items()}
        self.layout_grid = c["canvas"] // c["cell"]
        self.codec = Codec.word_level(s.caption for s in scenes["train"])
        for split, items in scenes.items():
            ids = self.codec.encode([s.caption for s in items])
            self.splits[split] = [
                CaptionItem(torch.from_numpy(s.image).unsqueeze(0), i, [s.caption], list(s.regions))
                for s, i in zip(items, ids)
            ]

    def _setup_karpathy(self) -> None:
        c = self.cfg
        data = read_karpathy(c["json"], c["image_root"], c["image_size"], c["skip_bad_images"])
        self.skipped = data.skipped
        train_captions = [" ".join(t) for item in data.splits["train"] for t in item.captions]
        self.codec = Codec.word_level(train_captions, min_count=c["min_count"])
        for split, items in data.splits.items():
            examples = []
            for item in items:
                image = torch.from_numpy(item.image).permute(2, 0, 1).float() / 255.0
                refs = [" ".join(t) for t in item.captions]
                # training sees every caption once per epoch; evaluation scores each image once
                targets = refs if split == "train" else refs[:1]
                for ids in self.codec.encode(targets):
                    if split != "train" or len(ids) <= c["max_caption_len"]:
                        examples.append(CaptionItem(image, ids, refs))
            self.splits[split] = examples

    def detokenize(self, ids: list[int]) -> str:
        return self.codec.decode(ids)
