"""``TranslationDataModule``: built-in synthetic pairs or parallel text files, as padded batches."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import partial
from itertools import repeat
from pathlib import Path

import torch
from torch import Tensor

from .base import SplitDataModule
from .codec import BOS, EOS, PAD, Codec
from .parallel import DataError, cached_bpe, find_split_file, read_aligned, read_parallel
from .synthetic import SyntheticDataConfig, generate_corpus

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
        data: a data config section (``kind: synthetic`` or ``kind: parallel``) as a dict.

    Everything is loaded in :meth:`setup`, which runs once however often Lightning calls it;
    call it yourself to surface data errors before a run starts. To score a trained model later, give it
    the model's vocabularies (:meth:`load_vocabularies`) and the text to translate
    (:meth:`setup_evaluation`) instead.
    """

    collate = staticmethod(collate)
    VOCABULARIES = {"src": "src_codec", "tgt": "tgt_codec"}

    def __init__(self, data: dict):
        super().__init__(data)
        if self.cfg["kind"] not in ("synthetic", "parallel"):
            raise ValueError(f"unknown data kind {self.cfg['kind']!r}")
        self.src_codec: Codec | None = None
        self.tgt_codec: Codec | None = None

    def setup(self, stage: str | None = None) -> None:
        if self.splits:
            return
        texts = self._read_synthetic() if self.cfg["kind"] == "synthetic" else self._read_parallel()
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
                raise DataError(f"{self.cfg['root']}: no training pair has at most data.max_train_len={limit} subwords")
        return pairs

    # ── the built-in corpus ─────────────────────────────────────────────────────────────────────
    def _synthetic_texts(self) -> dict[str, tuple[list[str], list[str], list]]:
        corpus = generate_corpus(SyntheticDataConfig(**self.cfg))
        return {
            split: ([" ".join(e.source) for e in examples], [" ".join(e.target) for e in examples],
                    [list(e.alignment) for e in examples])
            for split, examples in corpus.items()
        }  # fmt: skip

    def _read_synthetic(self) -> dict[str, tuple[list[str], list[str], list]]:
        texts = self._synthetic_texts()
        if self.src_codec is None:
            src, tgt, _ = texts["train"]
            self.src_codec, self.tgt_codec = Codec.word_level(src), Codec.word_level(tgt)
        return texts

    # ── parallel text ──────────────────────────────────────────────────────────────────────────
    @property
    def root(self) -> Path:
        return Path(self.cfg["root"]).expanduser()

    def _read_parallel(self) -> dict[str, tuple[list[str], list[str], list]]:
        c, root = self.cfg, self.root
        texts = {
            split: (*read_parallel(root, c[f"{split}_split"], c["src_lang"], c["tgt_lang"]), repeat(None))
            for split in ("train", "val", "test")
        }
        if self.src_codec is None:
            bpe = partial(cached_bpe, root, vocab_size=c["bpe_vocab_size"], lowercase=c["lowercase"],
                          cache_dir=c["cache_dir"])  # fmt: skip
            train_src, train_tgt, _ = texts["train"]
            self.src_codec = bpe(train_src, find_split_file(root, c["train_split"], c["src_lang"]), c["src_lang"])
            self.tgt_codec = bpe(train_tgt, find_split_file(root, c["train_split"], c["tgt_lang"]), c["tgt_lang"])
        return texts

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
            name = f"{src_path.name} -> {ref_path.name}"
        elif self.cfg["kind"] == "synthetic":
            texts = self._synthetic_texts()
            name = split or "test"
            if name not in texts:
                raise DataError(f"the built-in corpus has no split {name!r}; choose one of: {', '.join(texts)}")
            src, tgt, alignments = texts[name]
            self.splits = {"test": self._pairs(src, tgt, alignments, train=False)}
            return name
        else:
            name = split or self.cfg["test_split"]
            src, tgt = read_parallel(self.root, name, self.cfg["src_lang"], self.cfg["tgt_lang"])
        self.splits = {"test": self._pairs(src, tgt, repeat(None), train=False)}
        return name

    def detokenize(self, ids: list[int]) -> str:
        """Target ids -> text (up to ``</s>``)."""
        return self.tgt_codec.decode(ids)
