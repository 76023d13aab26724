"""``TranslationModule``: a thin LightningModule around :class:`~lightning_attn.models.Seq2Seq`.

Loss: token-level NLL under teacher forcing, plus the mechanism's own training terms (hard attention:
its REINFORCE surrogate, rewarded with the target's log-likelihood). Validation/test decode the source
and score BLEU (sacrebleu's 13a tokenisation, through torchmetrics so it syncs across DDP ranks).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor
from torchmetrics.text import SacreBLEUScore

from ..data.translation import TranslationBatch
from ..models import DecoderOutput, Seq2Seq
from ..models.seq2seq import Seq2SeqConfig
from .base import AttentionTask, TaskConfig


@dataclass
class TranslationTaskConfig(TaskConfig):
    """Training objective, optimiser and decoding for translation."""

    name: str = "translation"
    decode_len_ratio: float = 2.0  # per batch: at most ratio x longest source + 5 tokens
    # alignment pictures (target words x source words) in MLflow: every N epochs and at the last one
    # trained (wherever early stopping ends the run); 0 turns them off
    attention_pictures_every: int = 4
    attention_pictures: int = 2  # how many validation sentences get a picture


class TranslationModule(AttentionTask):
    """Args:
    task: the ``task`` config section (optimiser, decoding).
    model: the ``model`` config section (sizes).
    attention: the ``attention`` config section.
    src_vocab, tgt_vocab: vocabulary sizes.
    """

    def __init__(self, task: dict, model: dict, attention: dict, src_vocab: int, tgt_vocab: int):
        super().__init__(task)
        # plain dicts only: the checkpoint must load with torch.load(weights_only=True)
        self.save_hyperparameters(logger=False)
        self.model = Seq2Seq(src_vocab, tgt_vocab, attention, Seq2SeqConfig(**model))
        self.bleu = torch.nn.ModuleDict({"val": SacreBLEUScore(tokenize="13a"), "test": SacreBLEUScore(tokenize="13a")})
        self.test_hypotheses: list[str] = []
        self.test_references: list[str] = []

    @classmethod
    def from_data(cls, task: dict, model: dict, attention: dict, data) -> TranslationModule:
        """The module for a set-up :class:`~lightning_attn.data.TranslationDataModule` (its vocabularies)."""
        return cls(task, model, attention, src_vocab=len(data.src_codec), tgt_vocab=len(data.tgt_codec))

    def memory_mask(self, batch: TranslationBatch, weights: Tensor) -> Tensor:
        """The real source positions of each sentence."""
        positions = torch.arange(weights.size(-1), device=weights.device).unsqueeze(0)
        return positions < batch.src_lengths.to(weights.device).unsqueeze(1)

    def teacher_forced(self, batch: TranslationBatch) -> DecoderOutput:
        return self.model(batch.src, batch.src_lengths, batch.tgt_in)

    # ── evaluation ─────────────────────────────────────────────────────────────────────────────
    def decode(self, batch: TranslationBatch, beam_size: int) -> list[list[int]]:
        """Translate a batch; returns token ids per sentence."""
        limit = min(
            self.cfg["max_decode_len"], math.ceil(self.cfg["decode_len_ratio"] * int(batch.src_lengths.max())) + 5
        )
        if beam_size > 1:
            tokens = self.model.beam_search(batch.src, batch.src_lengths, limit, beam_size, self.cfg["length_penalty"])
        else:
            tokens, _ = self.model.greedy(batch.src, batch.src_lengths, limit)
        return tokens.tolist()

    def _evaluate(self, batch: TranslationBatch, stage: str) -> None:
        hypotheses = self._hypotheses(batch, stage)
        self.bleu[stage].update(hypotheses, [[r] for r in batch.references])
        if stage == "test":
            self.test_hypotheses += hypotheses
            self.test_references += batch.references

    def _log_epoch_metrics(self, stage: str) -> None:
        # torchmetrics objects synchronise across ranks themselves in compute()
        self.log(f"{stage}/bleu", self.bleu[stage].compute() * 100, prog_bar=stage == "val")
        self.bleu[stage].reset()
        self._log_alignment(stage)

    def on_test_epoch_start(self) -> None:
        self.test_hypotheses, self.test_references = [], []
