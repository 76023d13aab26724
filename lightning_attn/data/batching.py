"""Token-based batches of similar-length examples: little padding, an even load per step.

Random batches of real text mix 5-word and 40-word sentences, so most of every padded batch is
padding and the step time swings with the longest sentence. The usual cure (fairseq's
``batch_by_size``): sort the examples by length — ties broken at random — cut the sorted list into
batches holding at most ``max_tokens`` padded tokens, and shuffle the *order of the batches* every
epoch. The batches are fixed once; their order is what the DataLoader's sampler shuffles, so under
DDP Lightning's ``DistributedSampler`` splits them between ranks as it would split examples.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
from torch.utils.data import Dataset


def token_batches(lengths: Sequence[tuple[int, ...]], max_tokens: int, seed: int = 0) -> list[list[int]]:
    """Indices grouped into batches of similar length.

    Args:
        lengths: per example, the length of each of its sequences (translation: source, target + 1).
        max_tokens: the most padded tokens a batch may hold on any one side: ``batch size x`` its longest
            sequence. An example longer than this on its own still gets a batch of its own.
        seed: breaks ties between equally long examples, so that batches differ between seeds.

    Returns:
        Batches of indices into ``lengths``, shortest first; every index exactly once.
    """
    if max_tokens <= 0:
        raise ValueError(f"max_tokens must be positive, got {max_tokens}")
    n = len(lengths)
    if n == 0:
        return []
    table = np.asarray(lengths, dtype=np.int64).reshape(n, -1)
    tiebreak = np.random.default_rng(seed).permutation(n)
    # np.lexsort sorts by the last key first: longest side, then each side, then the random tie-break
    order = np.lexsort((tiebreak, *table.T[::-1], table.max(axis=1)))
    batches: list[list[int]] = []
    current: list[int] = []
    longest = 0
    for index in order.tolist():
        size = int(table[index].max())
        if current and (len(current) + 1) * max(longest, size) > max_tokens:
            batches.append(current)
            current, longest = [], 0
        current.append(index)
        longest = max(longest, size)
    batches.append(current)
    return batches


class Batches(Dataset):
    """A dataset whose items are whole batches: ``batches[i]`` collated from ``examples``.

    Served by a ``DataLoader(batch_size=None)`` — its sampler shuffles (or, under DDP, splits) the
    batches; its workers collate them.
    """

    def __init__(self, examples: Sequence, batches: list[list[int]], collate: Callable):
        self.examples = examples
        self.batches = batches
        self.collate = collate

    def __len__(self) -> int:
        return len(self.batches)

    def __getitem__(self, i: int):
        return self.collate([self.examples[j] for j in self.batches[i]])


def padding_share(lengths: Sequence[tuple[int, ...]], batches: list[list[int]]) -> float:
    """The share of padded positions that are padding (over every side), for a batch plan."""
    table = np.asarray(lengths, dtype=np.int64).reshape(len(lengths), -1)
    padded = real = 0
    for batch in batches:
        rows = table[batch]
        padded += int(rows.max(axis=0).sum()) * len(batch)
        real += int(rows.sum())
    return 1.0 - real / padded if padded else 0.0
