"""Training stability, measured the same way for every mechanism, and runs that blow up stopped at once.

:class:`DivergenceGuard` ends a run whose loss is NaN/inf or absurdly large, with the reason;
:class:`StabilityMonitor` logs the gradient-norm statistics and loss spikes of every epoch.
"""

from __future__ import annotations

import math
import statistics
from collections import deque

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback


def training_loss(outputs):
    """The loss tensor of ``on_train_batch_end``'s outputs (a dict, or the tensor itself), else ``None``."""
    return outputs["loss"] if isinstance(outputs, dict) else outputs


class DivergedError(RuntimeError):
    """The training loss became NaN, infinite, or larger than any sane loss: the run diverged."""


class DivergenceGuard(Callback):
    """Stop training the first time the loss is NaN/inf or above ``max_loss``, instead of training on garbage.

    ``max_loss`` catches explosions that stay finite: at a huge learning rate the loss can grow to
    1e31 without ever becoming NaN. Under DDP every rank takes the same decision (a rank that
    raised alone would leave the others waiting in the next collective).
    """

    def __init__(self, max_loss: float):
        self.max_loss = max_loss

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, outputs, batch, batch_idx) -> None:
        loss = training_loss(outputs)
        if loss is None:
            return
        value = float(loss.detach())
        bad = not abs(value) <= self.max_loss  # also True for NaN
        if trainer.world_size > 1:
            bad = trainer.strategy.reduce_boolean_decision(bad, all=False)
        if bad:
            what = f"{value:.4g}" if not math.isfinite(value) else f"{value:.4g} > stability.max_loss={self.max_loss:g}"
            raise DivergedError(
                f"training loss {what} at epoch {trainer.current_epoch}, step {trainer.global_step}: the run diverged"
            )


class SpikeCounter:
    """Counts losses above ``factor`` × the running median of the last ``window`` losses.

    The first ``warmup`` losses only fill the window: early training drops fast, and a median of
    three numbers says little.
    """

    def __init__(self, factor: float, window: int, warmup: int = 10):
        self.factor, self.warmup = factor, warmup
        self.recent: deque[float] = deque(maxlen=window)
        self.spikes = 0

    def update(self, loss: float) -> bool:
        spike = len(self.recent) >= self.warmup and loss > self.factor * statistics.median(self.recent)
        self.spikes += spike
        self.recent.append(loss)
        return spike


class StabilityMonitor(Callback):
    """Per epoch: gradient global norm (mean / max / std, before clipping) and loss spikes.

    Logged as ``stability/grad_norm_{mean,max,std}`` and ``stability/loss_spikes``; the task itself logs
    ``stability/attention_entropy`` and whatever the mechanism's training terms report (hard attention: the
    REINFORCE advantage and baseline).
    A non-finite gradient stops the run like a non-finite loss does.
    """

    def __init__(self, spike_factor: float, spike_window: int):
        self.spike_factor, self.spike_window = spike_factor, spike_window
        self.norms: list[float] = []
        self.spikes = SpikeCounter(spike_factor, spike_window)

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.norms = []
        self.spikes.spikes = 0

    def on_before_optimizer_step(self, trainer: L.Trainer, pl_module: L.LightningModule, optimizer) -> None:
        grads = [p.grad for p in pl_module.parameters() if p.grad is not None]
        if not grads:
            return
        norm = float(torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in grads])))
        if not math.isfinite(norm):
            raise DivergedError(
                f"gradient norm {norm} at epoch {trainer.current_epoch}, step {trainer.global_step}: the run diverged"
            )
        self.norms.append(norm)

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, outputs, batch, batch_idx) -> None:
        loss = training_loss(outputs)
        if loss is not None:
            self.spikes.update(float(loss.detach()))

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not self.norms:
            return
        norms = torch.tensor(self.norms, dtype=torch.float64)
        metrics = {
            "stability/grad_norm_mean": float(norms.mean()),
            "stability/grad_norm_max": float(norms.max()),
            "stability/grad_norm_std": float(norms.std(unbiased=False)),
            "stability/loss_spikes": float(self.spikes.spikes),
        }
        for name, value in metrics.items():
            pl_module.log(name, value, on_epoch=True, rank_zero_only=True)
