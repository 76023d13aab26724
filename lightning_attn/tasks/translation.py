"""``TranslationModule``: a thin LightningModule around :class:`~lightning_attn.models.Seq2Seq`.

Loss: token-level NLL under teacher forcing; a stochastic attention mechanism adds its REINFORCE
surrogate, rewarded with the target's log-likelihood. Validation/test decode the source and score
BLEU (sacrebleu's 13a tokenisation, through torchmetrics so it syncs across DDP ranks).
"""

from __future__ import annotations

import math

import lightning as L
import torch
import torch.nn.functional as F
from torchmetrics import MeanMetric
from torchmetrics.text import SacreBLEUScore

from ..data.codec import PAD
from ..data.translation import TranslationBatch
from ..models import Seq2Seq
from .metrics import alignment_hits


class TranslationModule(L.LightningModule):
    """Args:
    task: the ``task`` config section (optimiser, decoding).
    model: the ``model`` config section (sizes).
    attention: the ``attention`` config section.
    src_vocab, tgt_vocab: vocabulary sizes.
    """

    def __init__(self, task: dict, model: dict, attention: dict, src_vocab: int, tgt_vocab: int):
        super().__init__()
        # plain dicts only: the checkpoint must load with torch.load(weights_only=True)
        self.save_hyperparameters(logger=False)
        sizes = {k: v for k, v in model.items() if k != "kind"}
        self.model = Seq2Seq(src_vocab, tgt_vocab, attention, **sizes)
        self.cfg = task
        self.bleu = torch.nn.ModuleDict({"val": SacreBLEUScore(tokenize="13a"), "test": SacreBLEUScore(tokenize="13a")})
        # share of target tokens whose most-attended source word is the gold one (built-in data)
        self.align = torch.nn.ModuleDict({"val": MeanMetric(), "test": MeanMetric()})
        self.test_hypotheses: list[str] = []
        self.test_references: list[str] = []

    # ── training ───────────────────────────────────────────────────────────────────────────────
    def _losses(self, batch: TranslationBatch, stage: str) -> torch.Tensor:
        out = self.model(batch.src, batch.src_lengths, batch.tgt_in)
        step_mask = batch.tgt_out != PAD
        n_tokens = step_mask.sum()
        logits = out.logits.transpose(1, 2)
        token_nll = F.cross_entropy(logits, batch.tgt_out, ignore_index=PAD, reduction="none")
        nll = token_nll.sum() / n_tokens
        smoothing = self.cfg["label_smoothing"] if stage == "train" else 0.0
        loss = F.cross_entropy(logits, batch.tgt_out, ignore_index=PAD, label_smoothing=smoothing) if smoothing else nll
        metrics = {f"{stage}/nll": nll}
        attention = self.model.attention
        if attention.stochastic and stage == "train":
            # reward: the target's log-likelihood under the attention that was sampled
            terms = attention.reinforce_loss(-token_nll, out.log_prob, out.entropy, step_mask)
            loss = loss + terms.loss
            metrics |= {"train/reinforce_loss": terms.loss, "train/baseline": terms.baseline}
        if stage != "train":
            metrics[f"{stage}/ppl"] = torch.exp(nll.clamp_max(50))
            hits, total = alignment_hits(out.attention, batch.alignment)
            if total > 0:
                self.align[stage].update(hits / total, weight=total)
        on_step, sync = stage == "train", stage != "train"
        self.log_dict(metrics, batch_size=len(batch), on_step=on_step, on_epoch=True, sync_dist=sync)
        self.log(
            f"{stage}/loss",
            loss,
            batch_size=len(batch),
            on_step=on_step,
            on_epoch=True,
            sync_dist=sync,
            prog_bar=on_step,
        )
        return loss

    def training_step(self, batch: TranslationBatch, batch_idx: int) -> torch.Tensor:
        return self._losses(batch, "train")

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
        self._losses(batch, stage)
        beam = self.cfg["beam_size"] if stage == "test" else self.cfg["val_beam_size"]
        detokenize = self.trainer.datamodule.detokenize
        hypotheses = [detokenize(ids) for ids in self.decode(batch, beam)]
        self.bleu[stage].update(hypotheses, [[r] for r in batch.references])
        if stage == "test":
            self.test_hypotheses += hypotheses
            self.test_references += batch.references

    def validation_step(self, batch: TranslationBatch, batch_idx: int) -> None:
        self._evaluate(batch, "val")

    def test_step(self, batch: TranslationBatch, batch_idx: int) -> None:
        self._evaluate(batch, "test")

    def _log_epoch_metrics(self, stage: str) -> None:
        # torchmetrics objects synchronise across ranks themselves in compute()
        self.log(f"{stage}/bleu", self.bleu[stage].compute() * 100, prog_bar=stage == "val")
        self.bleu[stage].reset()
        if self.align[stage].update_called:
            self.log(f"{stage}/align_acc", self.align[stage].compute())
        self.align[stage].reset()

    def on_validation_epoch_end(self) -> None:
        self._log_epoch_metrics("val")

    def on_test_epoch_start(self) -> None:
        self.test_hypotheses, self.test_references = [], []

    def on_test_epoch_end(self) -> None:
        self._log_epoch_metrics("test")

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=self.cfg["lr"], weight_decay=self.cfg["weight_decay"])
