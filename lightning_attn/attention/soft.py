"""Soft (deterministic, differentiable) attention: a softmax-weighted average of the values."""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor

from .base import Attention, AttentionOutput, entropy_from_log_probs, full_mask, masked_log_softmax, weighted_sum
from .scorers import ScoreKind, build_scorer


@dataclass
class SoftAttentionConfig:
    """Soft attention (Bahdanau / Luong)."""

    mechanism: str = "soft"
    score: ScoreKind = ScoreKind.additive  # additive | dot | general
    hidden_dim: int = 128  # size of the additive scorer's hidden layer (unused by dot/general)


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
        """Log attention distribution ``(B, N)``; ``-inf`` at padding."""
        return masked_log_softmax(self.scorer.score(query, prepared_keys), mask)

    def attend(self, query: Tensor, prepared_keys: Tensor, values: Tensor, mask: Tensor | None) -> AttentionOutput:
        """``(B, Dq), (B, N, *), (B, N, Dv), (B, N) -> context (B, Dv)``."""
        mask = full_mask(values) if mask is None else mask
        # 1. score every position and normalise over the real ones
        log_probs = self.distribution(query, prepared_keys, mask)
        probs = log_probs.exp()
        # 2. average the values under that distribution
        context = weighted_sum(probs, values)
        return AttentionOutput(context, probs, probs, entropy=entropy_from_log_probs(log_probs, mask))


__all__ = ["SoftAttention", "SoftAttentionConfig"]
