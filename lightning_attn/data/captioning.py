"""``CaptioningDataModule``: the captioned images a :class:`~.source.CaptionSource` reads, as padded batches.

Karpathy-format images are read from their on-disk cache as batches are made (see
:mod:`lightning_attn.data.karpathy`), so memory does not grow with the dataset. With a frozen encoder the
model can train on its grid features instead: :meth:`CaptioningDataModule.use_features` extracts them once
into a feature cache keyed by the encoder's weights and the image set, and every later run that has the
same encoder and images reads them back without recomputing.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from .base import SplitDataModule
from .cache import RowFile, RowFileWriter, digest
from .codec import BOS, EOS, PAD, Codec
from .karpathy import ImageRow, load_image
from .registry import source_for
from .source import Captioned, CaptionSource, DataError

#: how cached features are stored (half the disk of float32; converted back when read)
FEATURE_DTYPE = "float16"

log = logging.getLogger(__name__)


@dataclass
class CaptionItem:
    image: Tensor | ImageRow  # (C, S, S) float; or a cache row: uint8 pixels (S, S, 3) or features (G·G, D)
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


def as_tensor(image: Tensor | ImageRow) -> Tensor:
    """An item's image as the model takes it: ``(C, S, S)`` floats in [0, 1], or cached features ``(G·G, D)``."""
    if isinstance(image, Tensor):
        return image
    array = image.load()
    if array.dtype == np.uint8:
        return torch.from_numpy(array.transpose(2, 0, 1).astype(np.float32) / 255.0)
    return torch.from_numpy(array.astype(np.float32))


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
    images = torch.stack([as_tensor(i.image) for i in items])
    return CaptionBatch(images, tgt_in, tgt_out, [i.references for i in items], alignment)


class CaptioningDataModule(SplitDataModule):
    """Args:
    data: a data config section of an image-caption kind (:class:`~.source.CaptionSource`) as a dict.

    Attributes (after :meth:`setup`): ``codec`` (caption vocabulary), ``channels``, ``image_size``,
    ``layout_grid`` (cells per side of a gold layout, else ``None``), ``skipped`` (bad images),
    ``images`` (an image cache, else ``None``).
    """

    collate = staticmethod(collate)
    VOCABULARIES = {"captions": "codec"}
    PREDICTS_FROM = "image files"  # what predict takes, one a line (translation: sentences)

    def __init__(self, data: dict):
        super().__init__(data)
        self.source: CaptionSource = source_for(self.cfg, CaptionSource)
        self.codec: Codec | None = None
        self.features: RowFile | None = None

    @property
    def channels(self) -> int:
        return self.source.channels

    @property
    def image_size(self) -> int:
        return self.source.image_size

    @property
    def layout_grid(self) -> int | None:
        return self.source.layout_grid

    @property
    def images(self) -> RowFile | None:
        return self.source.images

    @property
    def skipped(self) -> list[str]:
        return self.source.skipped

    def setup(self, stage: str | None = None) -> None:
        if self.splits:
            return
        read = self.source.read(("train", "val", "test"))
        if self.codec is None:
            train_captions = [caption for item in read["train"] for caption in item.captions]
            self.codec = Codec.word_level(train_captions, min_count=self.source.min_count)
        self.splits = {split: self._examples(items, train=split == "train") for split, items in read.items()}
        sizes = ", ".join(f"{k} {len(v)}" for k, v in self.splits.items())
        log.info("data: %s examples; vocabulary %d words", sizes, len(self.codec))

    def setup_evaluation(self, split: str | None = None, files: tuple[str, str] | None = None) -> str:
        """Make ``test`` the images of ``split`` (default ``test``), each scored once. Needs the vocabulary."""
        if files is not None:
            raise DataError("src=/ref= file pairs are for translation; captioning evaluates a split: split=NAME")
        if self.codec is None:
            raise RuntimeError("load_vocabularies() first: a trained model reads only its own vocabulary")
        name, valid = split or "test", self.source.evaluation_splits()
        if name not in valid:
            raise DataError(f"no split {name!r} in {self.cfg['kind']} data; choose one of: {', '.join(valid)}")
        items = self.source.read((valid[name],))[valid[name]]
        self.splits = {"test": self._examples(items, train=False)}
        return name

    def setup_prediction(self, images: list[str]) -> None:
        """Make ``test`` the image files ``images``, to caption: no references. Needs the vocabulary; a run trained
        on image files (the built-in scenes are drawn, not read)."""
        if self.codec is None:
            raise RuntimeError("load_vocabularies() first: a trained model reads only its own vocabulary")
        if self.source.builtin:
            raise DataError(
                f"a data={self.cfg['kind']} run captions the scenes it draws, not image files: predict images with a "
                "run trained on image files (data=karpathy, data=caption_table)"
            )
        items = []
        for name in images:
            try:
                pixels = load_image(Path(name).expanduser(), self.image_size)
            except (OSError, ValueError) as e:  # missing, not an image, truncated
                raise DataError(f"{name}: cannot read the image ({e})") from None
            tensor = torch.from_numpy(pixels.transpose(2, 0, 1).astype(np.float32) / 255.0)
            items.append(CaptionItem(tensor, [], [""]))
        self.splits = {"test": items}

    def _examples(self, items: list[Captioned], train: bool) -> list[CaptionItem]:
        """Training sees every caption once per epoch (those longer than the source's limit dropped);
        evaluation scores each image once, against every caption."""
        limit = self.source.max_caption_len if train else None
        examples = []
        for item in items:
            targets = item.captions if train else item.captions[:1]
            for ids in self.codec.encode(targets):
                if limit is None or len(ids) <= limit:
                    examples.append(CaptionItem(item.image, ids, item.captions, item.regions))
        return examples

    def use_features(self, backbone: Callable[[Tensor], Tensor], backbone_key: str, batch_size: int = 64) -> RowFile:
        """Serve a frozen encoder's grid features instead of images: ``backbone(images (B, C, S, S)) ->
        (B, N, D)``, run once over every cached image into a feature cache keyed by ``backbone_key`` (the
        encoder's weights) and the image set, and reused by every later run with the same two.
        """
        if self.images is None:
            raise DataError(
                "model.cache_features=true needs data=karpathy (the built-in scenes are generated in "
                "memory; there is no image set to cache features of)"
            )
        self.features = feature_cache(self.images, backbone, backbone_key, batch_size)
        for examples in self.splits.values():
            for example in examples:
                example.image = ImageRow(self.features, example.image.row)
        return self.features

    def detokenize(self, ids: list[int]) -> str:
        return self.codec.decode(ids)

    def picture(self, item: CaptionItem) -> np.ndarray:
        """What a person sees of an example: the built-in scene ``(S, S)`` in [0, 1], or the decoded image
        ``(S, S, 3)`` uint8 — also where the model reads a frozen encoder's cached features of it (the
        feature cache keeps the image cache's rows)."""
        if isinstance(item.image, Tensor):
            return item.image.permute(1, 2, 0).squeeze(-1).cpu().numpy()
        return self.images[item.image.row]


@torch.inference_mode()
def feature_cache(
    images: RowFile, backbone: Callable[[Tensor], Tensor], backbone_key: str, batch_size: int = 64
) -> RowFile:
    """Every image of the cache ``images`` through ``backbone``, stored as float16 rows ``(N, D)`` beside it;
    built once per (encoder weights, image set)."""
    key = digest("features", backbone_key, images.meta["key"])
    path = images.path.with_name(f"features-{key}.{np.dtype(FEATURE_DTYPE).str[1:]}")
    store = RowFile.open(path, key)
    if store is not None:
        log.info("using the feature cache %s (%d images)", path, len(store))
        return store
    started = last = time.monotonic()
    with RowFileWriter(path, (), FEATURE_DTYPE) as out:
        for start in range(0, len(images), batch_size):
            rows = range(start, min(start + batch_size, len(images)))
            batch = torch.stack([as_tensor(ImageRow(images, r)) for r in rows])
            features = backbone(batch).float().cpu().numpy()
            if out.rows == 0:  # the row shape is known once the first batch is through
                out.row_shape = features.shape[1:]
            for row in features:
                out.append(row)
            if time.monotonic() - last > 10:
                last = time.monotonic()
                log.info("extracting features: %d / %d images", out.rows, len(images))
        store = out.commit(key, {"images": images.meta["key"], "encoder": backbone_key})
    log.info("built the feature cache %s: %d images in %.0f s", path, len(store), time.monotonic() - started)
    return store
