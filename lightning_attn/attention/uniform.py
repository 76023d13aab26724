"""The no-attention control: every real position gets the same weight, whatever the query.

Reports use it as the floor: a mechanism that does not beat averaging has not learnt to attend.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from .base import Attention, AttentionOutput, full_mask, weighted_sum


@dataclass
class UniformAttentionConfig:
    """Uniform attention (the mean of the values); nothing to tune."""

    mechanism: str = "uniform"


class UniformAttention(Attention):
    """``context = mean of the real values``. ``query_dim``/``key_dim`` are accepted and ignored."""

    control = True

    def __init__(self, query_dim: int = 0, key_dim: int = 0, config: UniformAttentionConfig | None = None):
        super().__init__()

    def attend(self, query: Tensor, prepared_keys: Tensor, values: Tensor, mask: Tensor | None) -> AttentionOutput:
        """``(B, Dq), (B, N, Dk), (B, N, Dv), (B, N) -> context (B, Dv)``."""
        mask = full_mask(values) if mask is None else mask
        weights = mask.to(values.dtype)
        counts = weights.sum(dim=-1, keepdim=True)
        weights = weights / counts
        entropy = torch.log(counts.squeeze(-1))
        return AttentionOutput(weighted_sum(weights, values), weights, weights, entropy=entropy)
