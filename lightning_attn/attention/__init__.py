"""Attention mechanisms behind one interface (pure torch, no Lightning).

The registry below is the one place a mechanism is named. Adding one:

1. a module here with an :class:`Attention` subclass (its traits as attributes, its own training terms
   from :meth:`Attention.training_terms`, its readout if it reads otherwise than the weighted average)
   and a config dataclass whose ``mechanism`` field defaults to the registry name;
2. a line in :data:`MECHANISMS` (from outside the package: ``MECHANISMS.register(...)`` in a plugin);
3. ``conf/attention/<name>.yaml``.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from ..registry import Registry
from .base import TRAITS, Attention, AttentionOutput, AttentionTrace, TrainingTerms
from .gumbel import GumbelAttention, GumbelAttentionConfig
from .hard import HardAttention, HardAttentionConfig, ReinforceTerms
from .local import LocalAttention, LocalAttentionConfig
from .marginal import MarginalAttention, MarginalAttentionConfig
from .scorers import ScoreKind
from .soft import SoftAttention, SoftAttentionConfig
from .sparse import Entmax15Attention, Entmax15AttentionConfig, SparsemaxAttention, SparsemaxAttentionConfig
from .topk import TopKAttention, TopKAttentionConfig
from .uniform import UniformAttention, UniformAttentionConfig

#: name -> (mechanism class, config dataclass); a plugin adds its own with ``MECHANISMS.register(name, (cls, config))``
MECHANISMS: Registry[tuple[type[Attention], type]] = Registry(
    "attention mechanism",
    {
        "soft": (SoftAttention, SoftAttentionConfig),
        "hard": (HardAttention, HardAttentionConfig),
        "uniform": (UniformAttention, UniformAttentionConfig),
        "gumbel": (GumbelAttention, GumbelAttentionConfig),
        "sparsemax": (SparsemaxAttention, SparsemaxAttentionConfig),
        "entmax15": (Entmax15Attention, Entmax15AttentionConfig),
        "topk": (TopKAttention, TopKAttentionConfig),
        "marginal": (MarginalAttention, MarginalAttentionConfig),
        "local": (LocalAttention, LocalAttentionConfig),
    },
)


def build_attention(config: Any, query_dim: int, key_dim: int) -> Attention:
    """Build the mechanism a config names.

    Args:
        config: a mechanism config dataclass, or a mapping with (some of) its fields and ``mechanism``;
            fields left out take the dataclass's defaults.
        query_dim: size of the decoder's query.
        key_dim: size of the encoder states it attends over.
    """
    fields = dict(config) if not dataclasses.is_dataclass(config) else dataclasses.asdict(config)
    name = fields.get("mechanism")
    if name not in MECHANISMS:
        raise ValueError(f"unknown attention mechanism {name!r}; choose one of: {', '.join(sorted(MECHANISMS))}")
    cls, schema = MECHANISMS[name]
    return cls(query_dim, key_dim, schema(**fields))


__all__ = [
    "MECHANISMS",
    "TRAITS",
    "Attention",
    "AttentionOutput",
    "AttentionTrace",
    "HardAttention",
    "HardAttentionConfig",
    "ReinforceTerms",
    "ScoreKind",
    "SoftAttention",
    "SoftAttentionConfig",
    "TrainingTerms",
    "UniformAttention",
    "UniformAttentionConfig",
    "build_attention",
]
