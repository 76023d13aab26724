"""Top-k attention: the ``k`` best-scored positions, their scores renormalised by a softmax over just them.

Deterministic and trained by plain backpropagation (through the ``k`` selected scores); every other
position gets exactly zero weight and is never read. With ``k = 1`` it is hard attention's evaluation —
the argmax, read with a gather — at training time too.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from .base import AttentionOutput, entropy_of, gather_many, masked_scores
from .soft import SoftAttention, SoftAttentionConfig


@dataclass
class TopKAttentionConfig(SoftAttentionConfig):
    """Top-k attention; the scorer as soft attention's."""

    mechanism: str = "topk"
    k: int = 3  # positions read per step (fewer when a sequence is shorter)


class TopKAttention(SoftAttention):
    """Args:
    query_dim, key_dim: as :class:`SoftAttention`.
    config: the scorer and ``k`` (:class:`TopKAttentionConfig`).
    """

    sparse = True

    def __init__(self, query_dim: int, key_dim: int, config: TopKAttentionConfig | None = None):
        c = config or TopKAttentionConfig()
        super().__init__(query_dim, key_dim, c)
        if c.k < 1:
            raise ValueError(f"k must be at least 1, got {c.k}")
        self.k = c.k
        self.selects_one = c.k == 1  # then it reads exactly one position, as hard attention at evaluation

    def read(self, query: Tensor, prepared_keys: Tensor, values: Tensor, mask: Tensor) -> AttentionOutput:
        """``(…, T, Dq), (…, N, *), (…, N, Dv), (…, T, N) -> context (…, T, Dv)``."""
        scores = masked_scores(self.scorer.score(query, prepared_keys), mask)
        # 1. the k best positions (padding, at -inf, only where a sequence has fewer than k: weight 0)
        best, index = scores.topk(min(self.k, scores.size(-1)), dim=-1)
        top = torch.softmax(best, dim=-1)
        # 2. read those k values only
        picked = gather_many(values, index)  # (…, T, k, Dv)
        context = (top.unsqueeze(-1) * picked).sum(dim=-2)
        weights = torch.zeros_like(scores).scatter_(-1, index, top)
        return AttentionOutput(context, weights, weights, entropy=entropy_of(top))
