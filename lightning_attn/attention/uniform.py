"""The no-attention control: every real position gets the same weight, whatever the query.

Reports use it as the floor: a mechanism that does not beat averaging has not learnt to attend.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from .base import Attention, AttentionOutput, weighted_sum


@dataclass
class UniformAttentionConfig:
    """Uniform attention (the mean of the values); nothing to tune."""

    mechanism: str = "uniform"
    where: str = "cross"  # model=transformer: cross, self or both attentions average (others: soft)


class UniformAttention(Attention):
    """``context = mean of the real values``. ``query_dim``/``key_dim`` are accepted and ignored."""

    control = True

    def __init__(self, query_dim: int = 0, key_dim: int = 0, config: UniformAttentionConfig | None = None):
        super().__init__()

    def read(self, query: Tensor, prepared_keys: Tensor, values: Tensor, mask: Tensor) -> AttentionOutput:
        """``(…, T, Dq), (…, N, Dk), (…, N, Dv), (…, T, N) -> context (…, T, Dv)``."""
        weights = mask.to(values.dtype)
        counts = weights.sum(dim=-1, keepdim=True)
        weights = weights / counts
        entropy = torch.log(counts.squeeze(-1))
        return AttentionOutput(weighted_sum(weights, values), weights, weights, entropy=entropy)
