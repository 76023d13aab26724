"""Training stability: a run whose loss blows up ends at once, with the reason."""

from __future__ import annotations

import math

import lightning as L
from lightning.pytorch.callbacks import Callback


class DivergedError(RuntimeError):
    """The training loss became NaN, infinite, or larger than any sane loss: the run diverged."""


class DivergenceGuard(Callback):
    """Stop training the first time the loss is NaN/inf or above ``max_loss``, instead of training on garbage.

    ``max_loss`` catches explosions that stay finite: at a huge learning rate the loss can grow to
    1e31 without ever becoming NaN. Under DDP every rank takes the same decision (a rank that
    raised alone would leave the others waiting in the next collective).
    """

    def __init__(self, max_loss: float = 1e4):
        self.max_loss = max_loss

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, outputs, batch, batch_idx) -> None:
        loss = outputs["loss"] if isinstance(outputs, dict) else outputs
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
