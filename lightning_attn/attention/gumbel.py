"""Gumbel-softmax attention with a straight-through sample (Jang et al., 2017; Maddison et al., 2017).

Training: each decoder step draws ``y = one_hot(argmax(log α + g))`` with Gumbel noise ``g`` and reads that
one position — the forward pass is hard, like REINFORCE's sample — while the backward pass uses the
gradient of the relaxed sample ``softmax((log α + g) / τ)`` (the straight-through estimator): a biased
but low-variance gradient instead of the score function's unbiased, high-variance one. The temperature
``τ`` anneals from ``temperature`` towards ``min_temperature``, ``τ_t = max(τ_min, τ_0 · exp(−r · t))``
per training step ``t`` (Jang et al.'s schedule). Evaluation: the argmax of the scores, read with a gather.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from .base import (
    AttentionOutput,
    AttentionTrace,
    TrainingTerms,
    entropy_from_log_probs,
    masked_scores,
    read_best,
    weighted_sum,
)
from .soft import SoftAttention, SoftAttentionConfig


@dataclass
class GumbelAttentionConfig(SoftAttentionConfig):
    """Gumbel-softmax straight-through attention; the scorer as soft attention's."""

    mechanism: str = "gumbel"
    temperature: float = 1.0  # τ_0, at the first training step
    min_temperature: float = 0.5  # the floor the annealing approaches
    anneal_rate: float = 1.0e-4  # r in τ_t = max(τ_min, τ_0 · exp(−r · t)), t counting training steps


def gumbel_noise(scores: Tensor, mask: Tensor) -> Tensor:
    """Standard Gumbel noise shaped like ``scores (…, N)`` (zero at padding), drawn for the real positions only.

    ``torch.nn.functional.gumbel_softmax`` draws a value for every entry, row by row: padding appended to a
    batch would change both the noise of later rows and how much randomness a step consumes (so every
    later draw). Drawn position by position for as many positions as the longest real sequence has, the
    noise of the real positions does not depend on the padding (as hard attention's one-uniform-per-row
    sampler does not).
    """
    width = int(mask.sum(dim=-1).max())
    rows = scores.reshape(-1, scores.size(-1))
    uniform = torch.rand(width, rows.size(0), device=scores.device, dtype=scores.dtype).t()
    noise = torch.zeros_like(rows)
    noise[:, :width] = -torch.log(-torch.log(uniform.clamp(1e-10, 1 - 1e-7)))
    return noise.view_as(scores)


class GumbelAttention(SoftAttention):
    """Args:
    query_dim, key_dim: as :class:`SoftAttention`.
    config: the scorer and the temperature schedule (:class:`GumbelAttentionConfig`).
    """

    stochastic = True
    selects_one = True
    training_metrics = ("gumbel_temperature",)
    unsupported = {
        "self": (
            "a sampled position in self-attention would make every position of every layer a latent choice "
            "credited with the one sentence reward; use it in cross-attention (attention.where=cross)"
        )
    }

    def __init__(self, query_dim: int, key_dim: int, config: GumbelAttentionConfig | None = None):
        c = config or GumbelAttentionConfig()
        super().__init__(query_dim, key_dim, c)
        if not 0 < c.min_temperature <= c.temperature:
            raise ValueError(f"need 0 < min_temperature <= temperature, got {c.min_temperature} and {c.temperature}")
        self.schedule = (c.temperature, c.min_temperature, c.anneal_rate)
        self.register_buffer("steps", torch.zeros((), dtype=torch.long))  # saved in checkpoints

    @property
    def temperature(self) -> float:
        start, floor, rate = self.schedule
        return max(floor, start * math.exp(-rate * int(self.steps)))

    def read(self, query: Tensor, prepared_keys: Tensor, values: Tensor, mask: Tensor) -> AttentionOutput:
        """``(…, T, Dq), (…, N, *), (…, N, Dv), (…, T, N) -> context (…, T, Dv)``."""
        scores = masked_scores(self.scorer.score(query, prepared_keys), mask)
        if not self.training:
            return read_best(scores, values)
        # 1. α, as soft attention computes it (what the entropy and the pictures describe)
        log_probs = torch.log_softmax(scores, dim=-1)
        # 2. a one-hot sample forward, the relaxed sample's gradient backward (padding: -inf, never drawn)
        relaxed = torch.softmax((scores + gumbel_noise(scores, mask)) / self.temperature, dim=-1)
        hard = torch.zeros_like(relaxed).scatter_(-1, relaxed.argmax(dim=-1, keepdim=True), 1.0)
        sample = hard - relaxed.detach() + relaxed  # straight through: the value of `hard`, the gradient of `relaxed`
        context = weighted_sum(sample, values)
        return AttentionOutput(context, sample, log_probs.exp(), entropy=entropy_from_log_probs(log_probs, mask))

    def training_terms(self, trace: AttentionTrace, token_log_lik: Tensor, step_mask: Tensor) -> TrainingTerms:
        """No loss of its own (the likelihood trains it through the relaxation); one more step of annealing."""
        used = self.temperature
        if self.training:
            self.steps += 1
        return TrainingTerms(metrics={"gumbel_temperature": torch.tensor(used)})
