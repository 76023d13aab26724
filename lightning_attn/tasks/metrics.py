"""Metrics that are not in torchmetrics."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor
from torchmetrics import Metric

from .. import bleu


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


class CorpusBLEU(Metric):
    """sacreBLEU's corpus BLEU (0-100; :mod:`lightning_attn.bleu`: detokenised, case-sensitive, 13a, exp
    smoothing), accumulated batch by batch as summed sufficient statistics, which torchmetrics sums across
    DDP ranks — the score of the whole split whichever rank decoded which sentence."""

    full_state_update = False
    higher_is_better = True

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.add_state("stats", torch.zeros(bleu.N_STATS, dtype=torch.float64), dist_reduce_fx="sum")

    def update(self, hypotheses: Sequence[str], references: Sequence[Sequence[str]]) -> None:
        """``references``: per hypothesis, its reference(s)."""
        stats = bleu.sentence_statistics(hypotheses, references).sum(0)
        self.stats += torch.as_tensor(stats, dtype=torch.float64, device=self.stats.device)

    def compute(self) -> Tensor:
        return torch.tensor(bleu.corpus_bleu(self.stats.tolist()), dtype=torch.float32)


__all__ = ["CorpusBLEU", "alignment_hits"]
