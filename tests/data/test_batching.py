"""Token-based, length-bucketed batches (data.batch_tokens)."""

from __future__ import annotations

import random

import pytest
import torch

from lightning_attn.data import TranslationDataModule
from lightning_attn.data.batching import padding_share, token_batches

from ..helpers import TINY


def lengths(n: int, seed: int = 0) -> list[tuple[int, int]]:
    rng = random.Random(seed)
    # like real text: a target about as long as its source
    return [(s, max(2, s + rng.randint(-4, 4))) for s in (rng.randint(3, 40) for _ in range(n))]


def test_every_example_once_and_no_batch_over_the_token_budget():
    table = lengths(500)
    batches = token_batches(table, max_tokens=400)
    assert sorted(i for b in batches for i in b) == list(range(500))
    for batch in batches:
        assert len(batch) * max(max(table[i]) for i in batch) <= 400


def test_an_example_longer_than_the_budget_gets_a_batch_of_its_own():
    batches = token_batches([(5, 5), (90, 3), (6, 6)], max_tokens=50)
    assert [1] in batches and sorted(i for b in batches for i in b) == [0, 1, 2]


def test_bucketing_removes_most_padding():
    table = lengths(2000)
    order = list(range(2000))
    random.Random(1).shuffle(order)
    random_batches = [order[i : i + 20] for i in range(0, 2000, 20)]
    bucketed = token_batches(table, max_tokens=20 * 40)
    assert padding_share(table, random_batches) > 0.3
    assert padding_share(table, bucketed) < 0.1


def test_ties_are_broken_by_the_seed():
    table = [(10, 10)] * 50 + [(20, 20)] * 50
    assert token_batches(table, 100, seed=0) != token_batches(table, 100, seed=1)
    assert token_batches(table, 100, seed=3) == token_batches(table, 100, seed=3)


def test_datamodule_serves_token_batches_and_keeps_split_order_recoverable():
    data = TranslationDataModule(
        {**_data(), "batch_tokens": 200, "n_train": 300, "n_val": 40, "n_test": 40, "batch_size": 8}
    )
    data.setup()
    torch.manual_seed(0)
    batches = list(data.train_dataloader())
    assert sum(len(b) for b in batches) == len(data.splits["train"])
    assert all(b.src.numel() <= 200 and b.tgt_out.numel() <= 200 for b in batches)
    assert len({len(b) for b in batches}) > 1  # short sentences travel in larger batches
    test = list(data.test_dataloader())
    assert sorted(i for b in test for i in b.indices) == list(range(40))


def test_no_batch_tokens_means_batch_size_sentences():
    data = TranslationDataModule({**_data(), "n_train": 64, "n_val": 8, "n_test": 8, "batch_size": 16})
    data.setup()
    assert [len(b) for b in data.train_dataloader()] == [16] * 4


def _data() -> dict:
    from lightning_attn.config import compose

    cfg = compose([o for o in TINY if o.startswith("data.")])
    return dict(cfg.data)


@pytest.mark.parametrize("bad", [0, -5])
def test_budget_must_be_positive(bad):
    with pytest.raises(ValueError, match="max_tokens must be positive"):
        token_batches([(1, 1)], bad)
