"""The one interface every attention mechanism implements.

A mechanism turns a query and a set of keys/values into a context vector::

    query   (B, Dq)      the decoder state asking "where do I look?"
    keys    (B, N, Dk)   what the positions are matched on
    values  (B, N, Dv)   what the context is built from
    mask    (B, N) bool  True where a position is real, False where it is padding
    ──> AttentionOutput(context (B, Dv), weights (B, N), ...)

Decoders call the mechanism once per output step over the same keys, so the work that depends
only on the keys (a projection, for most scorers) is split off into :meth:`Attention.prepare`
and done once per sequence; :meth:`Attention.forward` is the one-shot form of the same thing.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn


@dataclass
class AttentionOutput:
    """What one attention step returns.

    Attributes:
        context: ``(B, Dv)`` the vector the decoder reads.
        weights: ``(B, N)`` the weights that built ``context``: a distribution for soft attention,
            one-hot rows where a hard mechanism selected a single position.
        probs: ``(B, N)`` the attention distribution the mechanism computed (equal to ``weights``
            for deterministic mechanisms); zero at padding.
        log_prob: ``(B,)`` log-probability of the selection for stochastic mechanisms, zero in rows
            that did not sample; ``None`` for deterministic mechanisms.
        entropy: ``(B,)`` entropy of ``probs`` (nats); ``None`` where the mechanism does not report it.
        sampled: ``(B,)`` bool, rows whose context came from a sampled position; ``None`` for
            deterministic mechanisms.
    """

    context: Tensor
    weights: Tensor
    probs: Tensor
    log_prob: Tensor | None = None
    entropy: Tensor | None = None
    sampled: Tensor | None = None


class Attention(nn.Module):
    """Base class: ``prepare`` once per sequence, ``attend`` once per decoder step.

    What a mechanism *is* is said by class attributes, which tasks, pictures and reports ask
    (:meth:`traits`) instead of looking at its name:

    * ``stochastic`` — its selection is sampled and trained with a score-function (REINFORCE)
      estimator; the task then asks it for a surrogate loss;
    * ``control`` — it does not attend at all (the uniform average): the floor a report compares with.
    """

    stochastic: bool = False
    control: bool = False

    @classmethod
    def traits(cls) -> dict[str, bool]:
        """What the mechanism is, by name: ``{"stochastic": …, "control": …}``."""
        return {"stochastic": cls.stochastic, "control": cls.control}

    def prepare(self, keys: Tensor) -> Tensor:
        """Precompute what depends on the keys only. ``(B, N, Dk) -> (B, N, *)``."""
        return keys

    def attend(self, query: Tensor, prepared_keys: Tensor, values: Tensor, mask: Tensor | None) -> AttentionOutput:
        raise NotImplementedError

    def forward(self, query: Tensor, keys: Tensor, values: Tensor, mask: Tensor | None = None) -> AttentionOutput:
        return self.attend(query, self.prepare(keys), values, mask)


def full_mask(values: Tensor) -> Tensor:
    """An all-True ``(B, N)`` mask for inputs without padding."""
    return torch.ones(values.shape[:2], dtype=torch.bool, device=values.device)


def masked_log_softmax(scores: Tensor, mask: Tensor) -> Tensor:
    """``log_softmax`` over real positions; padding gets ``-inf`` (so probability exactly 0).

    Args:
        scores: ``(B, N)`` raw scores.
        mask: ``(B, N)`` bool, True at real positions; every row needs at least one.
    """
    return torch.log_softmax(scores.masked_fill(~mask, float("-inf")), dim=-1)


def entropy_from_log_probs(log_probs: Tensor, mask: Tensor) -> Tensor:
    """Entropy ``(B,)`` in nats of the distributions ``(B, N)``; padding (log 0) contributes 0.

    Zeroing ``log p`` at padding *before* the product keeps ``0 · (-inf)`` (NaN) out of both the
    value and its gradient.
    """
    safe = log_probs.masked_fill(~mask, 0.0)
    return -(safe.exp() * safe).sum(dim=-1)


def weighted_sum(weights: Tensor, values: Tensor) -> Tensor:
    """``(B, N) x (B, N, D) -> (B, D)``."""
    return torch.bmm(weights.unsqueeze(1), values).squeeze(1)


def gather_rows(values: Tensor, index: Tensor) -> Tensor:
    """Pick one position per row without a one-hot matmul. ``(B, N, D), (B,) -> (B, D)``."""
    return values.gather(1, index.view(-1, 1, 1).expand(-1, 1, values.size(-1))).squeeze(1)
