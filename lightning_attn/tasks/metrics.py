"""Metrics that are not in torchmetrics."""

from __future__ import annotations

from torch import Tensor


def alignment_hits(attended: Tensor, gold: Tensor) -> tuple[Tensor, Tensor]:
    """How often the most-attended position is the gold one.

    Args:
        attended: ``(B, T)`` the most-attended position per target step.
        gold: ``(B, T)`` gold position per target token, ``-1`` where there is none.

    Returns:
        ``(hits, total)``: counts over the tokens that have a gold alignment.
    """
    has_gold = gold >= 0
    hits = (attended == gold) & has_gold
    return hits.sum(), has_gold.sum()


__all__ = ["alignment_hits"]
