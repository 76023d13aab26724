from __future__ import annotations

import torch

from lightning_attn.tasks.metrics import alignment_hits


def test_oracle_attention_is_always_aligned():
    gold = torch.tensor([[2, 0, 1, -1], [1, 1, 0, -1]])
    weights = torch.nn.functional.one_hot(gold.clamp_min(0), 3).float()
    hits, total = alignment_hits(weights.argmax(-1), gold)
    assert (hits.item(), total.item()) == (6, 6)  # -1 (no gold) is not counted


def test_wrong_attention_scores_zero_and_shapes_broadcast():
    gold = torch.tensor([[2, 0, 1]])
    weights = torch.nn.functional.one_hot((gold + 1) % 3, 3).float()
    hits, total = alignment_hits(weights.argmax(-1), gold)
    assert (hits.item(), total.item()) == (0, 3)
