"""A task the package does not know: sort a sequence of digit words, scored by exact-sequence accuracy.

It brings its own data source (random digit sequences, generated in memory, with the gold alignment: each
output digit's position in the input) and its own task class (the package's sequence-to-sequence model,
its own metric — not BLEU — as monitor and headline). It registers both when imported, as any plugin named
in ``LIGHTNING_ATTN_PLUGINS`` does; no file of the package names it.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import torch
from torch import Tensor
from torchmetrics import MeanMetric

from lightning_attn.data import DATA, Codec, TextPairSource, TranslationDataModule
from lightning_attn.data.source import DataError, Texts
from lightning_attn.models import Seq2Seq, Seq2SeqConfig
from lightning_attn.tasks import TASKS, AttentionTask, TaskConfig

WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")


@dataclass
class SortingDataConfig:
    kind: str = "sorting"
    n_train: int = 2000
    n_val: int = 100
    n_test: int = 100
    min_len: int = 3
    max_len: int = 6
    seed: int = 7
    batch_size: int = 32
    batch_tokens: int = 0
    num_workers: int = 0


class SortingSource(TextPairSource):
    """Distinct digits in random order -> the same digits ascending."""

    schema = SortingDataConfig
    builtin = True

    def read(self) -> dict[str, Texts]:
        c, rng = self.cfg, random.Random(self.cfg["seed"])
        out = {}
        for split in ("train", "val", "test"):
            src, tgt, alignments = [], [], []
            for _ in range(c[f"n_{split}"]):
                digits = rng.sample(range(10), rng.randint(c["min_len"], c["max_len"]))
                ordered = sorted(digits)
                src.append(" ".join(WORDS[d] for d in digits))
                tgt.append(" ".join(WORDS[d] for d in ordered))
                alignments.append([digits.index(d) for d in ordered])
            out[split] = (src, tgt, alignments)
        return out

    def vocabularies(self, texts: dict[str, Texts]) -> tuple[Codec, Codec]:
        return Codec.word_level(texts["train"][0]), Codec.word_level(texts["train"][1])

    def evaluation(self, split: str | None) -> tuple[str, Texts]:
        texts, name = self.read(), split or "test"
        if name not in texts:
            raise DataError(f"sorting data has no split {name!r}")
        return name, texts[name]


@dataclass
class SortingTaskConfig(TaskConfig):
    name: str = "sorting"
    beam_size: int = 1
    max_decode_len: int = 12


class SortingTask(AttentionTask):
    """Sorting with attention: the sequence-to-sequence model, exact-sequence accuracy (0-100)."""

    config = SortingTaskConfig
    datamodule = TranslationDataModule  # it reads any sentence-pair source
    models = ("seq2seq",)
    sources = ("sorting",)
    defaults = {"model": "seq2seq", "data": "sorting"}
    monitor, mode, headline = "val/accuracy", "max", "test/accuracy"
    patience = 3

    def __init__(self, task: dict, model: dict, attention: dict, src_vocab: int, tgt_vocab: int):
        super().__init__(task)
        self.save_hyperparameters(logger=False)
        self.model = Seq2Seq(src_vocab, tgt_vocab, attention, Seq2SeqConfig(**model))
        self.accuracy = torch.nn.ModuleDict({"val": MeanMetric(), "test": MeanMetric()})
        self._outputs: list[tuple[str, str]] = []

    @classmethod
    def from_data(cls, task: dict, model: dict, attention: dict, data) -> SortingTask:
        return cls(task, model, attention, len(data.src_codec), len(data.tgt_codec))

    def teacher_forced(self, batch):
        return self.model(batch.src, batch.src_lengths, batch.tgt_in)

    def memory_mask(self, batch, weights: Tensor) -> Tensor:
        positions = torch.arange(weights.size(-1), device=weights.device).unsqueeze(0)
        return positions < batch.src_lengths.to(weights.device).unsqueeze(1)

    def decode(self, batch, beam_size: int) -> list[list[int]]:
        limit = self.cfg["max_decode_len"]
        if beam_size > 1:
            return self.model.beam_search(batch.src, batch.src_lengths, limit, beam_size, 1.0).tolist()
        return self.model.greedy(batch.src, batch.src_lengths, limit)[0].tolist()

    def _evaluate(self, batch, stage: str) -> None:
        hypotheses = self._hypotheses(batch, stage)
        right = [h == r for h, r in zip(hypotheses, batch.references)]
        self.accuracy[stage].update(torch.tensor(right, dtype=torch.float))
        if stage == "test":
            self._outputs += zip(hypotheses, batch.references)

    def _log_epoch_metrics(self, stage: str) -> None:
        self.log(f"{stage}/accuracy", self.accuracy[stage].compute() * 100, prog_bar=stage == "val")
        self.accuracy[stage].reset()
        if stage == "test":
            self.test_hypotheses = [h for h, _ in self._outputs]
            self.test_references = [r for _, r in self._outputs]
            self._outputs = []
        self._log_alignment(stage)


DATA.register("sorting", SortingSource)
TASKS.register("sorting", SortingTask)
