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


def test_the_smoothed_loss_is_cross_entropys_from_one_softmax():
    from lightning_attn.data.codec import PAD
    from lightning_attn.tasks.base import smoothed

    torch.manual_seed(0)
    logits = torch.randn(3, 5, 11, dtype=torch.float64)  # (B, V, T)
    target = torch.randint(1, 5, (3, 11))
    target[0, 7:] = PAD
    target[2, 4:] = PAD
    log_probs = logits.log_softmax(1)
    mask = target != PAD
    nll = torch.nn.functional.nll_loss(log_probs, target, ignore_index=PAD, reduction="sum") / mask.sum()
    for eps in (0.1, 0.3):
        expected = torch.nn.functional.cross_entropy(logits, target, ignore_index=PAD, label_smoothing=eps)
        torch.testing.assert_close(smoothed(log_probs, nll, mask, mask.sum(), eps), expected)
