"""Metrics that are not in torchmetrics."""

from __future__ import annotations

from torch import Tensor


def alignment_hits(weights: Tensor, gold: Tensor) -> tuple[Tensor, Tensor]:
    """How often the most-attended source position is the gold one.

    Args:
        weights: ``(B, T, S)`` attention weights per target step.
        gold: ``(B, T)`` gold source index per target token, ``-1`` where there is none.

    Returns:
        ``(hits, total)``: counts over the tokens that have a gold alignment.
    """
    has_gold = gold >= 0
    hits = (weights.argmax(dim=-1) == gold) & has_gold
    return hits.sum(), has_gold.sum()


__all__ = ["alignment_hits"]
