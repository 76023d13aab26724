"""``TranslationDataModule``: the sentence pairs a :class:`~.source.TextPairSource` reads, as padded batches."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from itertools import repeat
from pathlib import Path

import torch
from torch import Tensor

from .base import SplitDataModule
from .codec import BOS, EOS, PAD, Codec
from .parallel import read_aligned
from .registry import source_for
from .source import DataError, TextPairSource

log = logging.getLogger(__name__)


@dataclass
class Pair:
    src: list[int]
    tgt: list[int]
    reference: str  # the target as text, what BLEU compares against
    index: int  # position in its split: predictions are written back in this order
    alignment: list[int] | None = None  # gold source index per target token (built-in data)


@dataclass
class TranslationBatch:
    """A padded batch (Lightning moves the tensors to the device).

    Attributes:
        src: ``(B, S)`` source ids, ``<pad>``-padded.
        src_lengths: ``(B,)``.
        tgt_in: ``(B, T)`` ``<s> y_1 … y_n``.
        tgt_out: ``(B, T)`` ``y_1 … y_n </s>``.
        references: the target sentences as text.
        indices: each sentence's position in its split.
        alignment: ``(B, T)`` gold source index per ``tgt_out`` token, -1 where none (``</s>``,
            padding, or data without alignments).
    """

    src: Tensor
    src_lengths: Tensor
    tgt_in: Tensor
    tgt_out: Tensor
    references: list[str]
    indices: list[int]
    alignment: Tensor

    def __len__(self) -> int:
        return self.src.size(0)


def collate(pairs: list[Pair]) -> TranslationBatch:
    batch = len(pairs)
    src_len = max(len(p.src) for p in pairs)
    tgt_len = max(len(p.tgt) for p in pairs) + 1
    src = torch.full((batch, src_len), PAD, dtype=torch.long)
    tgt_in = torch.full((batch, tgt_len), PAD, dtype=torch.long)
    tgt_out = torch.full((batch, tgt_len), PAD, dtype=torch.long)
    alignment = torch.full((batch, tgt_len), -1, dtype=torch.long)
    for i, p in enumerate(pairs):
        src[i, : len(p.src)] = torch.tensor(p.src)
        tgt_in[i, : len(p.tgt) + 1] = torch.tensor([BOS, *p.tgt])
        tgt_out[i, : len(p.tgt) + 1] = torch.tensor([*p.tgt, EOS])
        if p.alignment is not None:
            alignment[i, : len(p.alignment)] = torch.tensor(p.alignment)
    lengths = torch.tensor([len(p.src) for p in pairs])
    references, indices = [p.reference for p in pairs], [p.index for p in pairs]
    return TranslationBatch(src, lengths, tgt_in, tgt_out, references, indices, alignment)


class TranslationDataModule(SplitDataModule):
    """Splits ``train``/``val``/``test`` of the data a config names.

    Args:
        data: a data config section of a sentence-pair kind (:class:`~.source.TextPairSource`) as a dict.

    Everything is loaded in :meth:`setup`, which runs once however often Lightning calls it;
    call it yourself to surface data errors before a run starts. To score a trained model later, give it
    the model's vocabularies (:meth:`load_vocabularies`) and the text to translate
    (:meth:`setup_evaluation`) instead.
    """

    collate = staticmethod(collate)
    PREDICTS_FROM = "sentences"  # what predict takes, one a line (captioning: image files)
    VOCABULARIES = {"src": "src_codec", "tgt": "tgt_codec"}

    def __init__(self, data: dict):
        super().__init__(data)
        self.source: TextPairSource = source_for(self.cfg, TextPairSource)
        self.src_codec: Codec | None = None
        self.tgt_codec: Codec | None = None

    def setup(self, stage: str | None = None) -> None:
        if self.splits:
            return
        texts = self.source.read()
        if self.src_codec is None:
            self.src_codec, self.tgt_codec = self.source.vocabularies(texts)
        for split, (src, tgt, alignments) in texts.items():
            self.splits[split] = self._pairs(src, tgt, alignments, train=split == "train")
        sizes = ", ".join(f"{k} {len(v)}" for k, v in self.splits.items())
        log.info("data: %s pairs; vocabularies: source %d, target %d", sizes, len(self.src_codec), len(self.tgt_codec))

    def lengths(self, split: str) -> list[tuple[int, int]]:
        """Source length, target length + 1 (``<s>``/``</s>``): the padded sizes of the batch tensors."""
        return [(len(p.src), len(p.tgt) + 1) for p in self.splits[split]]

    def _pairs(self, src_text: list[str], tgt_text: list[str], alignments, train: bool) -> list[Pair]:
        """Encode a split; training pairs longer than ``max_train_len`` subwords (parallel text) are dropped."""
        src, tgt = self.src_codec.encode(src_text), self.tgt_codec.encode(tgt_text)
        pairs = [Pair(s, t, r, i, a) for i, (s, t, r, a) in enumerate(zip(src, tgt, tgt_text, alignments))]
        limit = self.cfg.get("max_train_len")
        if train and limit:
            pairs = [p for p in pairs if len(p.src) <= limit and len(p.tgt) <= limit]
            if not pairs:
                raise DataError(
                    f"{self.source.location}: no training pair has at most data.max_train_len={limit} subwords"
                )
        return pairs

    # ── a trained model's vocabularies, and evaluation on any split or file pair ───────────────────
    def setup_evaluation(self, split: str | None = None, files: tuple[str, str] | None = None) -> str:
        """Make ``test`` the text to score: the split named ``split`` (default: the configured test split)
        or the aligned ``files`` (source, reference). Needs the vocabularies. Returns what was loaded, for
        the record (``test_2016_flickr``, or ``source -> reference`` file names)."""
        if self.src_codec is None:
            raise RuntimeError("load_vocabularies() first: a trained model reads only its own vocabulary")
        if files is not None:
            src_path, ref_path = (Path(f).expanduser() for f in files)
            src, tgt = read_aligned(src_path, ref_path)
            name, texts = f"{src_path.name} -> {ref_path.name}", (src, tgt, repeat(None))
        else:
            name, texts = self.source.evaluation(split)
        self.splits = {"test": self._pairs(*texts, train=False)}
        return name

    def setup_prediction(self, sources: list[str]) -> None:
        """Make ``test`` the sentences ``sources``, to translate: no references. Needs the vocabularies."""
        if self.src_codec is None:
            raise RuntimeError("load_vocabularies() first: a trained model reads only its own vocabulary")
        self.splits = {"test": self._pairs(sources, [""] * len(sources), repeat(None), train=False)}

    def detokenize(self, ids: list[int]) -> str:
        """Target ids -> text (up to ``</s>``)."""
        return self.tgt_codec.decode(ids)
