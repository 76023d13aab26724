"""What every attention task shares: the loss (NLL + the mechanism's own training terms + the task's),
perplexity, alignment against gold attention, the optimiser. Subclasses say how a batch is run
through their model and how outputs are decoded and scored."""

from __future__ import annotations

from dataclasses import dataclass

import lightning as L
import torch
import torch.nn.functional as F
from omegaconf import MISSING
from torch import Tensor
from torchmetrics import MeanMetric

from ..data.codec import PAD
from ..models import DecoderOutput
from .metrics import alignment_hits


@dataclass
class TaskConfig:
    """What every task has: optimiser, loss smoothing, decoding."""

    name: str = MISSING
    lr: float = 2e-3
    weight_decay: float = 0.0
    label_smoothing: float = 0.0
    val_beam_size: int = 1  # validation decodes greedily by default: cheap and tracks the test metric
    beam_size: int = 5  # test decoding; 1 = greedy
    length_penalty: float = 1.0  # beam score = log p / length ** length_penalty
    max_decode_len: int = 100  # hard cap on generated tokens


class AttentionTask(L.LightningModule):
    """Subclasses set ``self.model`` (with an ``attention`` property) and implement :meth:`teacher_forced`.

    Args:
        task: the ``task`` config section (optimiser, loss knobs, decoding).
    """

    def __init__(self, task: dict):
        super().__init__()
        self.cfg = task
        # share of target tokens whose most-attended position is the gold one (data with gold attention)
        self.align = torch.nn.ModuleDict({"val": MeanMetric(), "test": MeanMetric()})

    def teacher_forced(self, batch) -> DecoderOutput:
        raise NotImplementedError

    def attended_gold_index(self, attention: Tensor) -> Tensor:
        """Where the model looked, in the index space of the gold alignment. ``(B, T, N) -> (B, T)``."""
        return attention.argmax(dim=-1)

    def extra_loss(self, out: DecoderOutput, step_mask: Tensor, n_tokens: Tensor) -> dict[str, Tensor]:
        """Further training terms (name -> value), added to the loss."""
        return {}

    def _losses(self, batch, stage: str) -> Tensor:
        out = self.teacher_forced(batch)
        step_mask = batch.tgt_out != PAD
        n_tokens = step_mask.sum()
        logits = out.logits.transpose(1, 2)
        token_nll = F.cross_entropy(logits, batch.tgt_out, ignore_index=PAD, reduction="none")
        nll = token_nll.sum() / n_tokens
        smoothing = self.cfg["label_smoothing"] if stage == "train" else 0.0
        loss = F.cross_entropy(logits, batch.tgt_out, ignore_index=PAD, label_smoothing=smoothing) if smoothing else nll
        metrics = {f"{stage}/nll": nll}
        stability: dict[str, Tensor] = {}  # per-epoch means, measured alike for every mechanism
        trace = out.trace
        if stage == "train":
            # the mechanism's own terms (REINFORCE for hard attention, none for soft), then the task's
            terms = self.model.attention.training_terms(trace, -token_nll, step_mask)
            for name, value in {**terms.losses, **self.extra_loss(out, step_mask, n_tokens)}.items():
                loss = loss + value
                metrics[f"train/{name}"] = value
            stability |= {f"stability/{name}": value for name, value in terms.metrics.items()}
            if trace.entropy is not None:  # mean over real decoder steps, nats
                stability["stability/attention_entropy"] = (trace.entropy * step_mask).sum() / n_tokens
        else:
            metrics[f"{stage}/ppl"] = torch.exp(nll.clamp_max(50))
            hits, total = alignment_hits(self.attended_gold_index(trace.weights), batch.alignment)
            if total > 0:
                self.align[stage].update(hits / total, weight=total)
        on_step, sync = stage == "train", stage != "train"
        self.log_dict(metrics, batch_size=len(batch), on_step=on_step, on_epoch=True, sync_dist=sync)
        if stability:
            self.log_dict(stability, batch_size=len(batch), on_step=False, on_epoch=True)
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

    def training_step(self, batch, batch_idx: int) -> Tensor:
        return self._losses(batch, "train")

    # ── evaluation: subclasses implement decode(), _evaluate() and _log_epoch_metrics() ──────────
    def _hypotheses(self, batch, stage: str) -> list[str]:
        """Log the teacher-forced losses, then decode the batch (test: beam, validation: val beam) to text."""
        self._losses(batch, stage)
        beam = self.cfg["beam_size"] if stage == "test" else self.cfg["val_beam_size"]
        detokenize = self.trainer.datamodule.detokenize
        return [detokenize(ids) for ids in self.decode(batch, beam)]

    def validation_step(self, batch, batch_idx: int) -> None:
        self._evaluate(batch, "val")

    def test_step(self, batch, batch_idx: int) -> None:
        self._evaluate(batch, "test")

    def on_validation_epoch_end(self) -> None:
        self._log_epoch_metrics("val")

    def on_test_epoch_end(self) -> None:
        self._log_epoch_metrics("test")

    def _log_alignment(self, stage: str) -> None:
        if self.align[stage].update_called:
            self.log(f"{stage}/align_acc", self.align[stage].compute())
        self.align[stage].reset()

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=self.cfg["lr"], weight_decay=self.cfg["weight_decay"])
