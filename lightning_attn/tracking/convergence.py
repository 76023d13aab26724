"""Train to convergence, and record how every run ended.

:class:`Convergence` is Lightning's ``EarlyStopping`` with one plateau rule, which it applies whether it
may stop the run or only watches it (``early_stopping.enabled=false``):

    an epoch makes progress when the monitored validation metric beats its best by more than
    ``min_delta``, or the validation loss beats its lowest by more than ``loss_min_delta``;
    the run has **converged** once ``patience`` epochs in a row made no progress.

The loss matters at the start: a hard-attention model can sit at 0 BLEU for a few epochs while its
likelihood improves steadily, and a metric-only rule would call that flat start a plateau.
``trainer.max_epochs`` is only the cap. When fitting ends the run logs

* ``run/epochs`` — validation epochs trained;
* ``run/best_epoch`` — the (1-based) epoch of the metric's best value;
* ``run/converged`` — 1 when the plateau rule held, 0 when training stopped (at the epoch cap, a time
  or step limit) while still making progress;
* tag ``stop_reason`` — the same in words.

A run that diverged, was pruned or was interrupted never reaches the end of fitting and logs none of these.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import lightning as L
from lightning.pytorch.callbacks import EarlyStopping
from lightning.pytorch.callbacks.early_stopping import EarlyStoppingReason

from .tags import STOP_REASON

EPOCHS, BEST_EPOCH, CONVERGED = "run/epochs", "run/best_epoch", "run/converged"


@dataclass
class Outcome:
    epochs: int
    best_epoch: int  # 1-based; 0 when the metric was never finite
    converged: bool
    reason: str

    def metrics(self) -> dict[str, float]:
        return {EPOCHS: float(self.epochs), BEST_EPOCH: float(self.best_epoch), CONVERGED: float(self.converged)}


def _progress_epochs(values: list[float], sign: float, min_delta: float) -> tuple[list[int], int]:
    """Indices where ``sign * value`` beat the best so far by more than ``min_delta``, and the best's index."""
    best, best_index, progress = -math.inf, -1, []
    for i, value in enumerate(values):
        if math.isfinite(value) and sign * value - min_delta > best:
            best, best_index = sign * value, i
            progress.append(i)
    return progress, best_index


def _progress(
    metric: list[float], mode: str, min_delta: float, loss: list[float] | None, loss_min_delta: float
) -> tuple[list[int], int]:
    """The epochs (0-based, sorted) that made progress by the metric or the loss, and the metric's best epoch."""
    progress, best_index = _progress_epochs(metric, 1.0 if mode == "max" else -1.0, min_delta)
    if loss is not None:
        progress += _progress_epochs(loss, -1.0, loss_min_delta)[0]
    return sorted(set(progress)), best_index


def judge(
    metric: list[float],
    mode: str,
    patience: int,
    *,
    min_delta: float,
    loss: list[float] | None = None,
    loss_min_delta: float = 0.0,
    cap_reached: bool = True,
) -> Outcome:
    """Apply the plateau rule to per-epoch validation values.

    Args:
        metric: the monitored metric after each epoch (non-finite values never count as progress).
        mode: ``max`` or ``min`` for the metric.
        patience: epochs in a row without progress that make a plateau.
        min_delta: the metric makes progress only by beating its best by more than this.
        loss: the validation loss after each epoch (lower is better), or ``None`` to judge by the metric alone.
        loss_min_delta: the loss makes progress only by beating its lowest by more than this.
        cap_reached: training ran to ``trainer.max_epochs`` (else it stopped at a time or step limit).
    """
    progress, best_index = _progress(metric, mode, min_delta, loss, loss_min_delta)
    epochs = len(metric)
    since = epochs - 1 - max(progress, default=-1)
    converged = bool(progress) and since >= patience
    if converged:
        reason = f"plateau: no progress in the last {since} of {epochs} epochs (best at epoch {best_index + 1})"
    else:
        limit = "the epoch cap (trainer.max_epochs)" if cap_reached else "a time or step limit"
        reason = f"stopped by {limit} while still improving (epoch {epochs}; best at epoch {best_index + 1})"
    return Outcome(epochs, best_index + 1, converged, reason)


def longest_wait(
    metric: list[float], mode: str, min_delta: float, loss: list[float] | None = None, loss_min_delta: float = 0.0
) -> int:
    """The most epochs in a row without progress (by :func:`judge`'s rule) that a run sat through before it
    progressed again. A patience must exceed it for the run to reach its last progress (one equal to it
    stops the run first): a task whose runs climb in steps needs a patience above the longest wait they show.

    Args: as :func:`judge`'s.
    """
    progress = _progress(metric, mode, min_delta, loss, loss_min_delta)[0]
    return max((later - earlier - 1 for earlier, later in zip(progress, progress[1:])), default=0)


class Convergence(EarlyStopping):
    """Lightning's ``EarlyStopping`` deciding by :func:`judge`; with ``stop=False`` it only records.

    Args:
        monitor: the validation metric (e.g. ``val/bleu``).
        mode: whether higher (``max``) or lower (``min``) is better.
        patience: the plateau rule for the metric: epochs in a row without progress.
        min_delta: the plateau rule for the metric: how much it must beat its best by to count as progress.
        loss_monitor: the validation loss whose progress counts too (``None``: metric alone).
        loss_min_delta: how far below its lowest the loss must fall to count as progress.
        stop: end training once converged (else train to the cap and only record the outcome).
    """

    def __init__(
        self,
        monitor: str,
        mode: str,
        patience: int,
        *,
        min_delta: float,
        loss_monitor: str | None = None,
        loss_min_delta: float = 0.0,
        stop: bool = True,
    ):
        # checked after each validation, never at a training epoch's end
        super().__init__(monitor, min_delta, patience, mode=mode, check_on_train_epoch_end=False)
        self.loss_monitor, self.loss_min_delta, self.stop = loss_monitor, loss_min_delta, stop
        self.metric_history: list[float] = []
        self.loss_history: list[float] = []
        self.outcome: Outcome | None = None

    @property
    def state_key(self) -> str:
        return self._generate_state_key(monitor=self.monitor, mode=self.mode, loss_monitor=self.loss_monitor)

    def state_dict(self) -> dict:
        return super().state_dict() | {"metric_history": self.metric_history, "loss_history": self.loss_history}

    def load_state_dict(self, state_dict: dict) -> None:
        super().load_state_dict(state_dict)
        self.metric_history = list(state_dict.get("metric_history", []))
        self.loss_history = list(state_dict.get("loss_history", []))

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.outcome = None

    def _judge(self, cap_reached: bool) -> Outcome:
        loss = self.loss_history if self.loss_monitor and len(self.loss_history) == len(self.metric_history) else None
        abs_delta = abs(self.min_delta)  # EarlyStopping stores it signed by mode
        return judge(
            self.metric_history,
            self.mode,
            self.patience,
            min_delta=abs_delta,
            loss=loss,
            loss_min_delta=self.loss_min_delta,
            cap_reached=cap_reached,
        )

    def _run_early_stopping_check(self, trainer: L.Trainer) -> None:
        """Lightning's documented extension point: called after each validation epoch."""
        metrics = trainer.callback_metrics
        if trainer.fast_dev_run or trainer.sanity_checking or self.monitor not in metrics:
            return
        self.metric_history.append(float(metrics[self.monitor]))
        if self.loss_monitor and self.loss_monitor in metrics:
            self.loss_history.append(float(metrics[self.loss_monitor]))
        outcome = self._judge(cap_reached=False)
        # every rank sees the same synced validation values; agreeing is what keeps DDP ranks together
        should_stop = trainer.strategy.reduce_boolean_decision(self.stop and outcome.converged, all=False)
        if should_stop:
            trainer.should_stop = True
            self.stopped_epoch = trainer.current_epoch
            self.stopping_reason = EarlyStoppingReason.PATIENCE_EXHAUSTED
            self.stopping_reason_message = outcome.reason

    def on_fit_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not self.metric_history:
            return
        cap_reached = self.stopped_epoch == 0 and trainer.current_epoch >= (trainer.max_epochs or 0)
        self.outcome = self._judge(cap_reached)
        if trainer.is_global_zero and trainer.logger is not None:
            trainer.logger.log_metrics(self.outcome.metrics(), step=trainer.global_step)
            experiment, run_id = getattr(trainer.logger, "experiment", None), getattr(trainer.logger, "run_id", None)
            if run_id is not None and hasattr(experiment, "set_tag"):
                experiment.set_tag(run_id, STOP_REASON, self.outcome.reason)


__all__ = ["BEST_EPOCH", "CONVERGED", "EPOCHS", "Convergence", "Outcome", "judge"]
