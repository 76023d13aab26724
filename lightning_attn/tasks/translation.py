"""``TranslationModule``: a thin LightningModule around :class:`~lightning_attn.models.Seq2Seq`.

Loss: token-level NLL under teacher forcing; a stochastic attention mechanism adds its REINFORCE
surrogate, rewarded with the target's log-likelihood. Validation/test decode the source and score
BLEU (sacrebleu's 13a tokenisation, through torchmetrics so it syncs across DDP ranks).
"""

from __future__ import annotations

import math

import torch
from torchmetrics.text import SacreBLEUScore

from ..data.translation import TranslationBatch
from ..models import DecoderOutput, Seq2Seq
from .base import AttentionTask


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
        sizes = {k: v for k, v in model.items() if k != "kind"}
        self.model = Seq2Seq(src_vocab, tgt_vocab, attention, **sizes)
        self.bleu = torch.nn.ModuleDict({"val": SacreBLEUScore(tokenize="13a"), "test": SacreBLEUScore(tokenize="13a")})
        self.test_hypotheses: list[str] = []
        self.test_references: list[str] = []

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
