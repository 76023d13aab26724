"""Soft (deterministic, differentiable) attention: a softmax-weighted average of the values."""

from __future__ import annotations

from dataclasses import dataclass

import torch.nn.functional as F
from torch import Tensor

from .base import Attention, AttentionOutput, entropy_from_log_probs, full_mask, masked_log_softmax, weighted_sum
from .scorers import DotScorer, ScoreKind, build_scorer


@dataclass
class SoftAttentionConfig:
    """Soft attention (Bahdanau / Luong)."""

    mechanism: str = "soft"
    score: ScoreKind = ScoreKind.additive  # additive | dot | general (a Transformer's heads: scaled dot product)
    hidden_dim: int = 128  # size of the additive scorer's hidden layer (unused by dot/general)
    where: str = "cross"  # model=transformer: cross, self or both attentions use the mechanism (others: soft)


class SoftAttention(Attention):
    """``context = Σ_i softmax(score(q, k_i)) · v_i``.

    Args:
        query_dim: size ``Dq`` of the query.
        key_dim: size ``Dk`` of the keys.
        config: the score function (see :mod:`.scorers`) and the additive scorer's hidden size
            (:class:`SoftAttentionConfig`, its defaults when omitted).
    """

    def __init__(self, query_dim: int, key_dim: int, config: SoftAttentionConfig | None = None):
        super().__init__()
        c = config or SoftAttentionConfig()
        self.scorer = build_scorer(c.score, query_dim, key_dim, c.hidden_dim)

    def prepare(self, keys: Tensor) -> Tensor:
        return self.scorer.prepare(keys)

    def distribution(self, query: Tensor, prepared_keys: Tensor, mask: Tensor) -> Tensor:
        """Log attention distribution ``(…, T, N)`` (one query ``(…, Dq)``: ``(…, N)``); ``-inf`` at padding."""
        if query.dim() == prepared_keys.dim() - 1:
            return self.distribution(query.unsqueeze(-2), prepared_keys, mask.unsqueeze(-2)).squeeze(-2)
        return masked_log_softmax(self.scorer.score(query, prepared_keys), mask)

    def read(self, query: Tensor, prepared_keys: Tensor, values: Tensor, mask: Tensor) -> AttentionOutput:
        """``(…, T, Dq), (…, N, *), (…, N, Dv), (…, T, N) -> context (…, T, Dv)``."""
        # 1. score every position and normalise over the real ones
        log_probs = self.distribution(query, prepared_keys, mask)
        probs = log_probs.exp()
        # 2. average the values under that distribution
        context = weighted_sum(probs, values)
        return AttentionOutput(context, probs, probs, entropy=entropy_from_log_probs(log_probs, mask))

    def context(self, query: Tensor, prepared_keys: Tensor, values: Tensor, mask: Tensor | None) -> Tensor:
        """With many queries and the dot scorer: ``scaled_dot_product_attention`` (its fused kernels; the
        caller scales the queries). A subclass that reads otherwise takes the general path."""
        if type(self).read is not SoftAttention.read or not isinstance(self.scorer, DotScorer):
            return super().context(query, prepared_keys, values, mask)
        if query.dim() == values.dim() - 1:
            return super().context(query, prepared_keys, values, mask)
        mask = full_mask(values).unsqueeze(-2) if mask is None else mask
        return F.scaled_dot_product_attention(query, prepared_keys, values, attn_mask=mask, scale=1.0)


__all__ = ["SoftAttention", "SoftAttentionConfig"]
