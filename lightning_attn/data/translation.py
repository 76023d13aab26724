"""``TranslationDataModule``: built-in synthetic pairs or parallel text files, as padded batches."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import torch
from torch import Tensor

from .base import SplitDataModule
from .codec import BOS, EOS, PAD, Codec
from .parallel import DataError, cached_bpe, find_split_file, read_parallel
from .synthetic import SyntheticDataConfig, generate_corpus

log = logging.getLogger(__name__)


@dataclass
class Pair:
    src: list[int]
    tgt: list[int]
    reference: str  # the target as text, what BLEU compares against
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
        alignment: ``(B, T)`` gold source index per ``tgt_out`` token, -1 where none (``</s>``,
            padding, or data without alignments).
    """

    src: Tensor
    src_lengths: Tensor
    tgt_in: Tensor
    tgt_out: Tensor
    references: list[str]
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
    return TranslationBatch(src, lengths, tgt_in, tgt_out, [p.reference for p in pairs], alignment)


class TranslationDataModule(SplitDataModule):
    """Splits ``train``/``val``/``test`` of the data a config names.

    Args:
        data: a data config section (``kind: synthetic`` or ``kind: parallel``) as a dict.

    Everything is loaded in :meth:`setup`, which runs once however often Lightning calls it;
    call it yourself to surface data errors before a run starts.
    """

    collate = staticmethod(collate)

    def __init__(self, data: dict):
        super().__init__(data)
        if self.cfg["kind"] not in ("synthetic", "parallel"):
            raise ValueError(f"unknown data kind {self.cfg['kind']!r}")
        self.src_codec: Codec | None = None
        self.tgt_codec: Codec | None = None

    def setup(self, stage: str | None = None) -> None:
        if self.splits:
            return
        if self.cfg["kind"] == "synthetic":
            self._setup_synthetic()
        else:
            self._setup_parallel()
        sizes = ", ".join(f"{k} {len(v)}" for k, v in self.splits.items())
        log.info("data: %s pairs; vocabularies: source %d, target %d", sizes, len(self.src_codec), len(self.tgt_codec))

    def _setup_synthetic(self) -> None:
        c = self.cfg
        corpus = generate_corpus(SyntheticDataConfig(**c))
        train = corpus["train"]
        self.src_codec = Codec.word_level(" ".join(e.source) for e in train)
        self.tgt_codec = Codec.word_level(" ".join(e.target) for e in train)
        for split, examples in corpus.items():
            src = self.src_codec.encode([" ".join(e.source) for e in examples])
            refs = [" ".join(e.target) for e in examples]
            tgt = self.tgt_codec.encode(refs)
            self.splits[split] = [Pair(s, t, r, list(e.alignment)) for s, t, r, e in zip(src, tgt, refs, examples)]

    def _setup_parallel(self) -> None:
        c = self.cfg
        root = Path(c["root"]).expanduser()
        texts = {
            split: read_parallel(root, c[f"{split}_split"], c["src_lang"], c["tgt_lang"])
            for split in ("train", "val", "test")
        }
        bpe = partial(
            cached_bpe, root, vocab_size=c["bpe_vocab_size"], lowercase=c["lowercase"], cache_dir=c["cache_dir"]
        )
        train_src, train_tgt = texts["train"]
        self.src_codec = bpe(train_src, find_split_file(root, c["train_split"], c["src_lang"]), c["src_lang"])
        self.tgt_codec = bpe(train_tgt, find_split_file(root, c["train_split"], c["tgt_lang"]), c["tgt_lang"])
        for split, (src_text, tgt_text) in texts.items():
            src, tgt = self.src_codec.encode(src_text), self.tgt_codec.encode(tgt_text)
            pairs = [Pair(s, t, r) for s, t, r in zip(src, tgt, tgt_text)]
            if split == "train":
                limit = c["max_train_len"]
                pairs = [p for p in pairs if len(p.src) <= limit and len(p.tgt) <= limit]
                if not pairs:
                    raise DataError(f"{root}: no training pair has at most data.max_train_len={limit} subwords")
            self.splits[split] = pairs

    def detokenize(self, ids: list[int]) -> str:
        """Target ids -> text (up to ``</s>``)."""
        return self.tgt_codec.decode(ids)
