"""Local attention, Luong et al. (2015)'s local-p: a window around a predicted position.

Each step predicts where to look, ``p_t = (S − 1) · sigmoid(v_p · tanh(W_p h_t))`` for a source of ``S``
real positions, and attends only within ``[p_t − D, p_t + D]`` (``D = window``): the window's attention
weights (a softmax of its scores) times a Gaussian ``exp(−(s − p_t)² / (2σ²))``, ``σ = D / 2`` — which
is what trains the predicted position — renormalised to sum to one (Luong et al. leave them
unnormalised; renormalised, the context stays an average like every other mechanism's).

At evaluation only the window is scored and read — ``2D + 1`` positions gathered from the prepared keys
and the values — so a step's cost does not grow with the source length: the one form of hard-ish
attention that skips scoring most positions. (Training computes the same weights over the whole
sequence, for simplicity; they are zero outside the window.)

In a Transformer's self-attention (``attention.where=self|both``) it is a sliding window instead: each
position attends with a softmax to the positions at most ``D`` away (in a causal decoder, the ``D`` before
it and itself), as Longformer's or Mistral's windowed attention.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from .base import AttentionOutput, entropy_of, gather_many, weighted_sum
from .soft import SoftAttention, SoftAttentionConfig


@dataclass
class LocalAttentionConfig(SoftAttentionConfig):
    """Local-p attention; the scorer as soft attention's (``hidden_dim`` also sizes the position predictor)."""

    mechanism: str = "local"
    window: int = 4  # D: the window is [p_t - D, p_t + D]


class LocalAttention(SoftAttention):
    """Args:
    query_dim, key_dim: as :class:`SoftAttention`.
    config: the scorer and the window half-width (:class:`LocalAttentionConfig`).
    """

    sparse = True

    def __init__(self, query_dim: int, key_dim: int, config: LocalAttentionConfig | None = None):
        c = config or LocalAttentionConfig()
        super().__init__(query_dim, key_dim, c)
        if c.window < 1:
            raise ValueError(f"window must be at least 1, got {c.window}")
        self.window = c.window
        self.sigma = c.window / 2
        self.position = nn.Sequential(nn.Linear(query_dim, c.hidden_dim), nn.Tanh(), nn.Linear(c.hidden_dim, 1))

    def centre(self, query: Tensor, lengths: Tensor) -> Tensor:
        """``p_t (…, T)``, a real position in ``[0, length − 1]``."""
        rows = self.position(query.reshape(-1, query.size(-1))).view(query.shape[:-1])  # 2-D: addmm, as ever
        return (lengths - 1).to(query.dtype) * torch.sigmoid(rows)

    def _weights(self, scores: Tensor, positions: Tensor, centre: Tensor, inside: Tensor) -> Tensor:
        """``softmax(score) · gauss``, renormalised over the window, i.e. ``softmax(score − (s − p)² / 2σ²)``."""
        prior = (positions - centre.unsqueeze(-1)) ** 2 / (2 * self.sigma**2)
        return torch.softmax((scores - prior).masked_fill(~inside, float("-inf")), dim=-1)

    def placed(self, place: str) -> LocalAttention:
        """In self-attention the window is fixed: no position predictor (an unused parameter would stall DDP)."""
        if place == "self":
            del self.position
        return super().placed(place)

    def self_attention_mask(self, mask: Tensor, query_positions: Tensor, key_positions: Tensor) -> Tensor:
        """In self-attention, a sliding window: ``mask`` and at most ``D`` positions away."""
        near = (query_positions.unsqueeze(-1) - key_positions.unsqueeze(0)).abs() <= self.window
        return mask & near

    def read(self, query: Tensor, prepared_keys: Tensor, values: Tensor, mask: Tensor) -> AttentionOutput:
        """``(…, T, Dq), (…, N, *), (…, N, Dv), (…, T, N) -> context (…, T, Dv)``."""
        if self.place == "self":  # the window is in the mask (self_attention_mask): a softmax within it
            return super().read(query, prepared_keys, values, mask)
        lengths = mask.sum(dim=-1)
        centre = self.centre(query, lengths)
        if self.training:
            # every position scored; weight zero outside the window (the nearest position is always inside)
            positions = torch.arange(values.size(-2), device=values.device, dtype=query.dtype)
            inside = mask & ((positions - centre.unsqueeze(-1)).abs() <= self.window)
            weights = self._weights(self.scorer.score(query, prepared_keys), positions, centre, inside)
            context = weighted_sum(weights, values)
        else:
            # 1. the (at most 2D + 1) positions s with |s - p| <= D; a slot with no such position reads the
            # position nearest the centre instead (always inside) and counts for nothing
            offsets = torch.arange(2 * self.window + 1, device=values.device)
            index = torch.ceil(centre - self.window).long().unsqueeze(-1) + offsets  # (…, T, W)
            inside = (index >= 0) & (index < lengths.unsqueeze(-1)) & (index - centre.unsqueeze(-1) <= self.window)
            nearest = torch.minimum(torch.round(centre).long(), lengths - 1).unsqueeze(-1).expand_as(index)
            index = torch.where(inside, index, nearest)
            # 2. score and read the window only: each query against its own window's keys
            keys, window = gather_many(prepared_keys, index), gather_many(values, index)  # (…, T, W, *)
            scores = self.scorer.score(query.unsqueeze(-2), keys).squeeze(-2)
            local = self._weights(scores, index.to(query.dtype), centre, inside)
            context = (local.unsqueeze(-1) * window).sum(dim=-2)
            weights = torch.zeros(mask.shape, dtype=local.dtype, device=local.device).scatter_add_(-1, index, local)
        return AttentionOutput(context, weights, weights, entropy=entropy_of(weights))
