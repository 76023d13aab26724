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
from .base import PLACES, TRAITS, Attention, AttentionOutput, AttentionTrace, TrainingTerms
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


#: where a Transformer uses the configured mechanism (``attention.where``); its other attentions are soft
WHERE = ("cross", "self", "both")


def config_fields(config: Any) -> dict[str, Any]:
    """A mechanism config's fields: from its dataclass, or a mapping of (some of) them."""
    return dataclasses.asdict(config) if dataclasses.is_dataclass(config) else dict(config)


def build_attention(config: Any, query_dim: int, key_dim: int, *, place: str = "recurrent") -> Attention:
    """Build the mechanism a config names, for one place (:data:`PLACES`).

    Args:
        config: a mechanism config dataclass, or a mapping with (some of) its fields and ``mechanism``;
            fields left out take the dataclass's defaults.
        query_dim: size of the decoder's query.
        key_dim: size of the encoder states it attends over.
        place: ``recurrent`` (a recurrent decoder's step), ``cross`` or ``self`` (a Transformer's attentions).

    Raises:
        ValueError: an unknown mechanism, or one that cannot be used in ``place`` (the reason in one line).
    """
    fields = config_fields(config)
    name = fields.get("mechanism")
    if name not in MECHANISMS:
        raise ValueError(f"unknown attention mechanism {name!r}; choose one of: {', '.join(sorted(MECHANISMS))}")
    if place not in PLACES:
        raise ValueError(f"unknown place {place!r} for attention; one of {', '.join(PLACES)}")
    if fields.get("where", "cross") not in WHERE:
        raise ValueError(f"attention.where={fields['where']!r}: choose one of {', '.join(WHERE)}")
    if place == "recurrent" and fields.get("where", "cross") != "cross":
        raise ValueError(
            f"attention.where={fields['where']} needs model=transformer: a recurrent decoder has one attention"
        )
    cls, schema = MECHANISMS[name]
    reason = cls.unsupported.get(place)
    if reason is None and place != "recurrent" and cls.read is Attention.read:
        reason = "it implements only a recurrent decoder's one query per step (Attention.attend), not Attention.read"
    if reason:
        where = {"self": "a Transformer's self-attention", "cross": "a Transformer's cross-attention"}
        raise ValueError(f"attention={name} cannot be used in {where.get(place, 'a recurrent decoder')}: {reason}")
    return cls(query_dim, key_dim, schema(**fields)).placed(place)


__all__ = [
    "MECHANISMS",
    "PLACES",
    "TRAITS",
    "WHERE",
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
    "config_fields",
]
