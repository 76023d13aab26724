"""Alignment score functions ``score(query, key)`` shared by the soft and hard mechanisms.

Each scorer projects the keys once (:meth:`prepare`) and then scores each query against every
position in ``O(N · D)`` (:meth:`score`): queries ``(…, T, Dq)`` against keys ``(…, N, *)`` give scores
``(…, T, N)``. Names follow Luong et al. (2015):

* ``additive`` (Bahdanau et al., 2015): ``v · tanh(W_q q + W_k k)``
* ``dot``: ``q · k`` (needs ``Dq == Dk``)
* ``general``: ``q · (W k)``
"""

from __future__ import annotations

from enum import Enum

import torch
from torch import Tensor, nn


class ScoreKind(str, Enum):
    additive = "additive"
    dot = "dot"
    general = "general"


class AdditiveScorer(nn.Module):
    def __init__(self, query_dim: int, key_dim: int, hidden_dim: int):
        super().__init__()
        self.query_proj = nn.Linear(query_dim, hidden_dim, bias=False)
        self.key_proj = nn.Linear(key_dim, hidden_dim)
        self.v = nn.Linear(hidden_dim, 1, bias=False)

    def prepare(self, keys: Tensor) -> Tensor:
        """``(B, N, Dk) -> (B, N, H)``: ``W_k k``, the expensive half of the score."""
        return self.key_proj(keys)

    def score(self, query: Tensor, prepared_keys: Tensor) -> Tensor:
        """``(…, T, Dq), (…, N, H) -> (…, T, N)``."""
        joint = prepared_keys.unsqueeze(-3) + self.query_proj(query).unsqueeze(-2)  # (…, T, N, H)
        return self.v(torch.tanh(joint)).squeeze(-1)


class DotScorer(nn.Module):
    def __init__(self, query_dim: int, key_dim: int):
        super().__init__()
        if query_dim != key_dim:
            raise ValueError(
                f"dot attention needs query and key sizes to match, got query {query_dim} and key {key_dim}; "
                "use attention.score=general or additive"
            )

    def prepare(self, keys: Tensor) -> Tensor:
        return keys

    def score(self, query: Tensor, prepared_keys: Tensor) -> Tensor:
        """``(…, T, D), (…, N, D) -> (…, T, N)``."""
        if query.size(-2) == 1:  # one query: keys times a column, the product a recurrent decoder's step always took
            return torch.matmul(prepared_keys, query.squeeze(-2).unsqueeze(-1)).squeeze(-1).unsqueeze(-2)
        return torch.matmul(query, prepared_keys.transpose(-1, -2))


class GeneralScorer(DotScorer):
    def __init__(self, query_dim: int, key_dim: int):
        nn.Module.__init__(self)
        self.key_proj = nn.Linear(key_dim, query_dim, bias=False)

    def prepare(self, keys: Tensor) -> Tensor:
        """``(B, N, Dk) -> (B, N, Dq)``: projecting keys (once) instead of the query (every step)."""
        return self.key_proj(keys)


def build_scorer(kind: str | ScoreKind, query_dim: int, key_dim: int, hidden_dim: int) -> nn.Module:
    kind = ScoreKind(kind)
    if kind is ScoreKind.additive:
        return AdditiveScorer(query_dim, key_dim, hidden_dim)
    if kind is ScoreKind.dot:
        return DotScorer(query_dim, key_dim)
    return GeneralScorer(query_dim, key_dim)
