"""Sparse normalisers in place of the softmax: sparsemax (Martins & Astudillo, 2016) and 1.5-entmax
(Peters et al., 2019), from the ``entmax`` package.

Both map the scores to a distribution with **exact zeros**: positions scored far enough below the best
get no weight at all, so attention is sparse by construction yet trained by plain backpropagation
(their Jacobians are defined everywhere the softmax's is). Sparsemax is the Euclidean projection onto
the simplex (α = 2), 1.5-entmax sits between it and the softmax (α = 1).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from torch import Tensor

from .base import AttentionOutput, entropy_of, masked_scores, weighted_sum
from .soft import SoftAttention, SoftAttentionConfig


@dataclass
class SparsemaxAttentionConfig(SoftAttentionConfig):
    """Sparsemax attention; the scorer as soft attention's."""

    mechanism: str = "sparsemax"


@dataclass
class Entmax15AttentionConfig(SoftAttentionConfig):
    """1.5-entmax attention; the scorer as soft attention's."""

    mechanism: str = "entmax15"


class SparseNormAttention(SoftAttention):
    """Soft attention with a sparse normaliser. ``(…, T, Dq), (…, N, *), (…, N, Dv), (…, T, N) -> (…, T, Dv)``."""

    sparse = True

    @staticmethod
    def normalise(scores: Tensor) -> Tensor:
        raise NotImplementedError

    def read(self, query: Tensor, prepared_keys: Tensor, values: Tensor, mask: Tensor) -> AttentionOutput:
        # padding scores -inf: below any threshold, so exactly zero weight
        weights = self.normalise(masked_scores(self.scorer.score(query, prepared_keys), mask))
        return AttentionOutput(weighted_sum(weights, values), weights, weights, entropy=entropy_of(weights))


def _entmax(name: str) -> Callable[[Tensor], Tensor]:
    def normalise(scores: Tensor) -> Tensor:
        import entmax

        return getattr(entmax, name)(scores, dim=-1)

    return normalise


class SparsemaxAttention(SparseNormAttention):
    """Sparsemax: the Euclidean projection of the scores onto the probability simplex."""

    normalise = staticmethod(_entmax("sparsemax"))

    def __init__(self, query_dim: int, key_dim: int, config: SparsemaxAttentionConfig | None = None):
        super().__init__(query_dim, key_dim, config or SparsemaxAttentionConfig())


class Entmax15Attention(SparseNormAttention):
    """1.5-entmax: sparse like sparsemax, smoother like the softmax."""

    normalise = staticmethod(_entmax("entmax15"))

    def __init__(self, query_dim: int, key_dim: int, config: Entmax15AttentionConfig | None = None):
        super().__init__(query_dim, key_dim, config or Entmax15AttentionConfig())
