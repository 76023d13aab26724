"""What every attention task shares: the loss (NLL + the mechanism's own training terms + the task's),
perplexity, alignment against gold attention, the optimiser. Subclasses say how a batch is run
through their model and how outputs are decoded and scored."""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import Enum
from typing import ClassVar

import lightning as L
import torch
import torch.nn.functional as F
from omegaconf import MISSING
from torch import Tensor
from torch.optim.lr_scheduler import LambdaLR, ReduceLROnPlateau
from torchmetrics import MeanMetric, SumMetric

from ..attention.base import entropy_of
from ..data.codec import PAD
from ..models import DecoderOutput
from ..tracking import tags as T
from .metrics import alignment_hits


def smoothed(log_probs: Tensor, nll: Tensor, step_mask: Tensor, n_tokens: Tensor, smoothing: float) -> Tensor:
    """The label-smoothed loss from the log-probabilities ``(B, V, T)`` the likelihood ``nll`` was read from —
    ``F.cross_entropy(..., label_smoothing=smoothing)``'s value without a second softmax over the vocabulary."""
    uniform = -(log_probs.sum(1) * step_mask).sum() / (n_tokens * log_probs.size(1))
    return (1 - smoothing) * nll + smoothing * uniform


class LRSchedule(str, Enum):
    constant = "constant"
    plateau = "plateau"  # ReduceLROnPlateau on the task's validation metric
    warmup = "warmup"  # linear warm-up to lr over warmup_steps, then ∝ 1/sqrt(step) (Vaswani et al., 2017)


@dataclass
class TaskConfig:
    """What every task has: optimiser, loss smoothing, decoding."""

    name: str = MISSING
    lr: float = 2e-3
    weight_decay: float = 0.0
    # constant, or plateau: multiply the learning rate by lr_decay whenever the task's validation metric
    # (val/bleu, val/bleu4) has not improved for lr_patience epochs (torch's ReduceLROnPlateau)
    lr_schedule: LRSchedule = LRSchedule.constant
    lr_decay: float = 0.5
    lr_patience: int = 0
    min_lr: float = 1e-5
    warmup_steps: int = 400  # lr_schedule=warmup: optimiser steps to reach lr
    label_smoothing: float = 0.0
    val_beam_size: int = 1  # validation decodes greedily by default: cheap and tracks the test metric
    beam_size: int = 5  # test decoding; 1 = greedy
    length_penalty: float = 1.0  # beam score = log p / length ** length_penalty
    max_decode_len: int = 100  # hard cap on generated tokens


STAGES = ("val", "test")


@dataclass
class StepLosses:
    """One step's loss and what is logged of it."""

    loss: Tensor
    metrics: dict[str, Tensor]  # logged per step (training) and per epoch
    stability: dict[str, Tensor]  # logged per epoch: measured alike for every mechanism, plus its own


#: the checkpoint key of the validation metric a plateau schedule has not yet stepped with (see on_train_start)
PLATEAU_METRIC = "lightning_attn_plateau_metric"


class AttentionTask(L.LightningModule):
    """A task: everything the rest of the toolkit asks about it, and its LightningModule.

    A subclass is one task. Its class attributes say what the toolkit needs to know before a model
    exists — config composition, ``train``, sweeps and (through the tags every run carries) reports read
    them — and its methods run the model. It is registered with one line of
    :data:`lightning_attn.tasks.TASKS` (from outside the package: a plugin, see :mod:`lightning_attn.plugins`).

    Attributes:
        config: the ``task`` section's schema (a :class:`TaskConfig` dataclass; its ``name`` is the task's).
        datamodule: its LightningDataModule, built from the ``data`` section.
        models: the model kinds it can use (:data:`lightning_attn.models.MODELS`).
        sources: the data kinds it reads (:data:`lightning_attn.data.DATA`).
        defaults: its model and data when neither the command line nor a preset picks one.
        monitor, mode: the validation metric that early stopping, the best checkpoint, a plateau schedule
            and a sweep's default objective follow, and whether higher (``max``) or lower is better.
        headline: the test metric a report ranks runs by.
        patience: early stopping's patience unless the config sets one (``early_stopping.patience``): the
            epochs in a row without progress after which its validation metric has stopped climbing.
        item_statistics: the per-item statistics of the headline metric that a report's significance
            test resamples (:data:`lightning_attn.report.significance.ITEM_STATISTICS`), or ``None``.
        margin: the headline metric's margin of practical equivalence — two mechanisms whose true difference
            is smaller are as good as each other — which a report tests equivalence within (``report --margin``
            overrides it); ``None``: a report claims no equivalence unless given one.
        grid: whether the decoder attends over a square grid of regions (any number of positions otherwise):
            the speed pass measures it at square sizes only.
        test_hypotheses, test_references: after a test, the outputs and their references, in the split's
            order (written as the run's predictions).

    Subclasses set ``self.model`` (with an ``attention`` property) and implement ``from_data``,
    :meth:`teacher_forced`, ``decode``, ``_evaluate`` and ``_log_epoch_metrics``.

    At evaluation every task measures, from the attention the model used (``trace.weights``) over the real
    memory positions (:meth:`memory_mask`):

    * alignment against the gold attention, where the data has it: ``align_precision`` (predicted links —
      the most-attended position of each target token — that are gold), ``align_recall`` (gold links found;
      also logged as ``align_acc``) and ``align_aer`` (alignment error rate, ``1 − 2|A∩G| / (|A| + |G|)``
      with every gold link sure);
    * sparsity: ``attention_zero_share`` (the share of real positions with exactly zero weight) and
      ``attention_positions`` (the effective number of positions attended, ``exp`` of the entropy).

    Args:
        task: the ``task`` config section (optimiser, loss knobs, decoding).
    """

    config: ClassVar[type]
    datamodule: ClassVar[type]
    models: ClassVar[tuple[str, ...]]
    sources: ClassVar[tuple[str, ...]]
    defaults: ClassVar[dict[str, str]]
    monitor: ClassVar[str]
    mode: ClassVar[str] = "max"
    headline: ClassVar[str]
    patience: ClassVar[int] = 3
    item_statistics: ClassVar[str | None] = None
    margin: ClassVar[float | None] = None
    grid: ClassVar[bool] = False

    def __init__(self, task: dict):
        super().__init__()
        self.cfg = task
        self.test_hypotheses: list[str] = []
        self.test_references: list = []  # per hypothesis: its reference, or its references
        # alignment link counts and sparsity means, per evaluation stage (torchmetrics: synced under DDP)
        self.links = torch.nn.ModuleDict(
            {s: torch.nn.ModuleDict({k: SumMetric() for k in ("hits", "predicted", "gold")}) for s in STAGES}
        )
        self.sparsity = torch.nn.ModuleDict(
            {s: torch.nn.ModuleDict({k: MeanMetric() for k in ("zero_share", "positions")}) for s in STAGES}
        )

    def teacher_forced(self, batch) -> DecoderOutput:
        raise NotImplementedError

    @classmethod
    def bare_model(cls, model: dict, attention: dict, vocab: int) -> torch.nn.Module:
        """The task's model built from its ``model`` and ``attention`` sections without data, ``vocab`` words
        (each side): what the speed pass measures cost with. It has ``start(memory)``, ``memory_dim``,
        ``decoder.step`` and ``attention``, as :meth:`start_decoding`'s model."""
        raise NotImplementedError

    def start_decoding(self, batch):
        """The decoder's first state for ``batch`` (its inputs encoded), as greedy and beam search start."""
        raise NotImplementedError

    def bind_data(self, data) -> None:
        """Adapt the set-up DataModule to this model once its weights are in place (after ``from_data``,
        or after a checkpoint is loaded); nothing by default."""

    def attention_figures(self, data, examples: list) -> list:
        """Where the model, decoding greedily as it is now, looked for each word it generated: one matplotlib
        figure per example of ``data`` (this task's set-up DataModule); none by default."""
        return []

    def run_tags(self) -> dict[str, str]:
        """Tags the run records about how this task scores (e.g. the BLEU signature); by default, which
        per-item statistics its significance test resamples and its margin of equivalence, where it has them."""
        tags = {T.ITEM_STATISTICS: self.item_statistics} if self.item_statistics else {}
        return tags | ({T.EQUIVALENCE_MARGIN: str(self.margin)} if self.margin is not None else {})

    def memory_mask(self, batch, weights: Tensor) -> Tensor:
        """``(B, N)`` bool: the real positions attended over (default: all of them)."""
        return torch.ones(weights.shape[0], weights.shape[-1], dtype=torch.bool, device=weights.device)

    def attended_gold_index(self, attention: Tensor) -> Tensor:
        """Where the model looked, in the index space of the gold alignment. ``(B, T, N) -> (B, T)``."""
        return attention.argmax(dim=-1)

    def extra_loss(self, out: DecoderOutput, step_mask: Tensor, n_tokens: Tensor) -> dict[str, Tensor]:
        """Further training terms of the task (name -> value), added to the loss."""
        return {}

    def losses(self, batch, stage: str) -> StepLosses:
        """The teacher-forced loss of a batch — the likelihood, the mechanism's own training terms and the
        task's — and what is logged of it. Evaluation stages also update the alignment and sparsity counts."""
        out = self.teacher_forced(batch)
        step_mask = batch.tgt_out != PAD
        n_tokens = step_mask.sum()
        log_probs = out.logits.transpose(1, 2).log_softmax(1)  # (B, V, T): F.cross_entropy's own two steps
        token_nll = F.nll_loss(log_probs, batch.tgt_out, ignore_index=PAD, reduction="none")
        nll = token_nll.sum() / n_tokens
        smoothing = self.cfg["label_smoothing"] if stage == "train" else 0.0
        loss = smoothed(log_probs, nll, step_mask, n_tokens, smoothing) if smoothing else nll
        metrics = {f"{stage}/nll": nll}
        stability: dict[str, Tensor] = {}
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
            heads = trace.extras.get("head_entropy")  # (B, T, H): a Transformer's traced layer, head by head
            for h in range(heads.size(-1) if heads is not None else 0):
                stability[f"stability/attention_entropy_head{h}"] = (heads[..., h] * step_mask).sum() / n_tokens
        else:
            metrics[f"{stage}/ppl"] = torch.exp(nll.clamp_max(50))
            self._measure_attention(batch, trace.weights, step_mask, stage)
        return StepLosses(loss, metrics, stability)

    def training_loss(self, batch) -> Tensor:
        """The training loss of a batch, nothing logged (the gradient-estimator measurement uses it)."""
        return self.losses(batch, "train").loss

    def _measure_attention(self, batch, weights: Tensor, step_mask: Tensor, stage: str) -> None:
        real = self.memory_mask(batch, weights).unsqueeze(1).expand_as(weights)  # (B, T, N)
        steps = step_mask.bool()
        # alignment: one predicted link per real target token, one gold link where the data has one
        attended = self.attended_gold_index(weights)
        hits, gold = alignment_hits(attended, batch.alignment)
        if gold > 0:
            counts = self.links[stage]
            counts["hits"].update(hits)
            counts["gold"].update(gold)
            counts["predicted"].update(steps.sum())
        # sparsity over the real positions of the real steps
        zero_share = ((weights == 0) & real).sum(-1) / real.sum(-1).clamp_min(1)
        positions = torch.exp(entropy_of(weights / weights.sum(-1, keepdim=True).clamp_min(1e-30)))
        self.sparsity[stage]["zero_share"].update(zero_share[steps])
        self.sparsity[stage]["positions"].update(positions[steps])

    def _losses(self, batch, stage: str) -> Tensor:
        step = self.losses(batch, stage)
        on_step, sync = stage == "train", stage != "train"
        self.log_dict(step.metrics, batch_size=len(batch), on_step=on_step, on_epoch=True, sync_dist=sync)
        if step.stability:
            self.log_dict(step.stability, batch_size=len(batch), on_step=False, on_epoch=True)
        self.log(
            f"{stage}/loss",
            step.loss,
            batch_size=len(batch),
            on_step=on_step,
            on_epoch=True,
            sync_dist=sync,
            prog_bar=on_step,
        )
        return step.loss

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
        """Log (and reset) the stage's alignment and sparsity measures; alignment only with gold attention."""
        counts = self.links[stage]
        if counts["gold"].update_called:
            hits, predicted, gold = (counts[k].compute() for k in ("hits", "predicted", "gold"))
            recall = hits / gold.clamp_min(1)
            self.log(f"{stage}/align_acc", recall)
            self.log(f"{stage}/align_recall", recall)
            self.log(f"{stage}/align_precision", hits / predicted.clamp_min(1))
            self.log(f"{stage}/align_aer", 1 - 2 * hits / (predicted + gold).clamp_min(1))
        for metric in counts.values():
            metric.reset()
        for name, metric in self.sparsity[stage].items():
            if metric.update_called:
                self.log(f"{stage}/attention_{name}", metric.compute())
            metric.reset()

    def configure_optimizers(self):
        c = self.cfg
        optimizer = torch.optim.Adam(self.parameters(), lr=c["lr"], weight_decay=c["weight_decay"])
        schedule = LRSchedule(c["lr_schedule"])
        if schedule is LRSchedule.constant:
            return optimizer
        if schedule is LRSchedule.warmup:
            warmup = max(1, c.get("warmup_steps", 1))
            factor = LambdaLR(optimizer, lambda step: min((step + 1) / warmup, math.sqrt(warmup / (step + 1))))
            return {"optimizer": optimizer, "lr_scheduler": {"scheduler": factor, "interval": "step"}}
        plateau = ReduceLROnPlateau(
            optimizer, mode=self.mode, factor=c["lr_decay"], patience=c["lr_patience"], min_lr=c["min_lr"]
        )
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": plateau, "monitor": self.monitor}}

    # ── resuming with a plateau schedule ─────────────────────────────────────────────────────────
    # Lightning checkpoints at validation end, before the epoch's plateau-scheduler step, and on resume does not
    # take that step (it has no metrics then: fit_loop.on_advance_end). Left so, a resumed run's schedule lags by
    # one epoch: an epoch that should halve the learning rate does not. The checkpoint keeps the validation
    # metric; the first training epoch after a resume takes the missed step with it.
    def on_save_checkpoint(self, checkpoint: dict) -> None:
        for config in self.trainer.lr_scheduler_configs:
            value = self.trainer.callback_metrics.get(config.monitor) if config.monitor else None
            if isinstance(config.scheduler, ReduceLROnPlateau) and value is not None:
                checkpoint[PLATEAU_METRIC] = float(value)

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        self._plateau_metric = checkpoint.get(PLATEAU_METRIC)

    def on_train_start(self) -> None:
        metric, self._plateau_metric = getattr(self, "_plateau_metric", None), None
        if metric is None:
            return
        for config in self.trainer.lr_scheduler_configs:
            plateau = config.scheduler
            # one step per finished epoch: fewer means the step before the checkpoint was skipped
            if isinstance(plateau, ReduceLROnPlateau) and plateau.last_epoch < self.current_epoch:
                plateau.step(metric)
