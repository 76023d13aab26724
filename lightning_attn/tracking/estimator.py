"""Why one mechanism trains more stably than another: the variance of its gradient estimator.

A mechanism whose choice is sampled or relaxed in training (trait ``stochastic``: hard attention's
REINFORCE, Gumbel straight-through) gets its attention scorer's gradient from a random estimate (in a
Transformer: the gradient of the query and key projections around it).
:class:`EstimatorVariance` measures how random: every ``every_n_steps`` steps it recomputes the training
loss of the current batch ``samples`` times — the mechanism sampling anew, everything else (dropout)
held still — takes the gradient of the attention parameters each time, and logs per epoch

* ``stability/grad_estimator_var`` — the total variance of those gradients (trace of their covariance);
* ``stability/grad_estimator_snr`` — the squared norm of their mean over that variance (signal to noise).

The measurement changes nothing: no optimiser state, the mechanism's buffers (a REINFORCE baseline, an
annealing step count) restored, and the random state of the training run left as it was.
"""

from __future__ import annotations

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback


class EstimatorVariance(Callback):
    """Args:
    every_n_steps: measure at every this-many training steps (0: never).
    samples: gradient samples per measurement.
    """

    def __init__(self, every_n_steps: int, samples: int):
        if samples < 2 and every_n_steps:
            raise ValueError("a variance needs at least 2 samples")
        self.every_n_steps, self.samples = every_n_steps, samples

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, outputs, batch, batch_idx) -> None:
        attention = pl_module.model.attention
        if not self.every_n_steps or not attention.stochastic or trainer.global_step % self.every_n_steps:
            return
        # the parameters that score where it attends: the mechanism's own (a recurrent decoder's scorer), or those a
        # model names (a Transformer: the query and key projections around the mechanism)
        scoring = getattr(pl_module.model, "attention_parameters", attention.parameters)
        params = [p for p in scoring() if p.requires_grad]
        if not params:
            return
        buffers = {name: b.clone() for name, b in attention.named_buffers()}
        was_training = pl_module.training
        pl_module.eval()
        attention.train()  # the mechanism samples as in training; dropout is held still
        grads = []
        try:
            with torch.random.fork_rng(devices=[]), torch.enable_grad():
                for _ in range(self.samples):
                    loss = pl_module.training_loss(batch)
                    parts = torch.autograd.grad(loss, params, allow_unused=True)
                    grads.append(
                        torch.cat(
                            [(g if g is not None else torch.zeros_like(p)).flatten() for g, p in zip(parts, params)]
                        )
                    )
        finally:
            pl_module.train(was_training)
            with torch.no_grad():
                for name, b in attention.named_buffers():
                    b.copy_(buffers[name])
        stacked = torch.stack(grads).double()
        variance = stacked.var(dim=0, unbiased=True).sum()
        signal = stacked.mean(dim=0).pow(2).sum()
        metrics = {
            "stability/grad_estimator_var": float(variance),
            "stability/grad_estimator_snr": float(signal / variance.clamp_min(1e-30)),
        }
        for name, value in metrics.items():
            pl_module.log(name, value, on_step=False, on_epoch=True, rank_zero_only=True, batch_size=1)
