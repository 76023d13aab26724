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

from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import Tensor, nn

TRAITS = ("stochastic", "selects_one", "sparse", "control")


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
        extras: ``{name: (B, …)}`` whatever else the mechanism's own training terms need from each step.
    """

    context: Tensor
    weights: Tensor
    probs: Tensor
    log_prob: Tensor | None = None
    entropy: Tensor | None = None
    extras: dict[str, Tensor] = field(default_factory=dict)


@dataclass
class AttentionTrace:
    """The attention of a teacher-forced pass, every decoder step stacked along dimension 1.

    Attributes:
        weights, probs: ``(B, T, N)``.
        log_prob, entropy: ``(B, T)``, or ``None`` when the mechanism does not report them.
        extras: ``{name: (B, T, …)}``.
    """

    weights: Tensor
    probs: Tensor
    log_prob: Tensor | None
    entropy: Tensor | None
    extras: dict[str, Tensor]

    @classmethod
    def stack(cls, steps: list[AttentionOutput]) -> AttentionTrace:
        def along(values: list[Tensor | None]) -> Tensor | None:
            return None if values[0] is None else torch.stack(values, dim=1)

        extras = {k: torch.stack([s.extras[k] for s in steps], dim=1) for k in steps[0].extras}
        return cls(
            along([s.weights for s in steps]),
            along([s.probs for s in steps]),
            along([s.log_prob for s in steps]),
            along([s.entropy for s in steps]),
            extras,
        )


@dataclass
class TrainingTerms:
    """What a mechanism adds to a training step.

    Attributes:
        losses: ``{name: scalar}`` added to the task's loss (logged as ``train/<name>``).
        metrics: ``{name: scalar}`` logged once per epoch as ``stability/<name>``.
    """

    losses: dict[str, Tensor] = field(default_factory=dict)
    metrics: dict[str, Tensor] = field(default_factory=dict)


class Attention(nn.Module):
    """Base class: ``prepare`` once per sequence, ``attend`` once per decoder step, :meth:`readout` for how
    the decoder's output reads what was attended, and :meth:`training_terms` for whatever a mechanism
    needs beyond the task's likelihood.

    What a mechanism *is* is said by attributes, which tasks, pictures and reports ask (:meth:`traits`)
    instead of looking at its name:

    * ``stochastic`` — its choice is sampled (or relaxed) during training: its training terms bring the
      estimator, and the gradient estimator's variance is worth measuring;
    * ``selects_one`` — at evaluation it reads a single position (one-hot weights): pictures outline
      that position instead of drawing a heat map;
    * ``sparse`` — its weights have exact zeros (a sparse normaliser, a top-k or a window);
    * ``control`` — it does not attend at all (the uniform average): the floor a report compares with.
    """

    stochastic: bool = False
    selects_one: bool = False
    sparse: bool = False
    control: bool = False
    #: the metrics :meth:`training_terms` reports (logged as ``stability/<name>``), for whoever checks for them
    training_metrics: tuple[str, ...] = ()

    def traits(self) -> dict[str, bool]:
        """What the mechanism is, by name (an instance may differ from its class: top-k with k = 1 selects one)."""
        return {name: bool(getattr(self, name)) for name in TRAITS}

    def readout(self, att: AttentionOutput, values: Tensor, predict: Callable[[Tensor], Tensor]) -> Tensor:
        """The step's output scores ``(B, V)`` from what was attended.

        Args:
            att: this step's attention.
            values: ``(B, N, Dv)`` what was attended over.
            predict: the decoder's output layer: contexts ``(B, …, Dv)`` to logits ``(B, …, V)``.

        The default reads the context (the weighted average); a mechanism may read otherwise — marginal
        attention mixes the output distributions of every position instead.
        """
        return predict(att.context)

    def training_terms(self, trace: AttentionTrace, token_log_lik: Tensor, step_mask: Tensor) -> TrainingTerms:
        """Extra loss terms and metrics of one training step (none by default).

        Args:
            trace: the step's attention, every decoder step stacked.
            token_log_lik: ``(B, T)`` log-likelihood of each target token (0 at padding), attached to the
                graph: a mechanism may reward with it (detached) or train through it.
            step_mask: ``(B, T)`` bool, True at real target steps.
        """
        return TrainingTerms()

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


def entropy_of(weights: Tensor) -> Tensor:
    """Entropy ``(B,)`` in nats of distributions ``(B, N)`` that may hold exact zeros (``0 log 0 = 0``)."""
    return -(weights * torch.log(weights.clamp_min(1e-30))).sum(dim=-1)


def masked_scores(scores: Tensor, mask: Tensor) -> Tensor:
    """``scores`` with ``-inf`` at padding: no normaliser gives padding any weight."""
    return scores.masked_fill(~mask, float("-inf"))


def read_best(scores: Tensor, values: Tensor) -> AttentionOutput:
    """Evaluation of a mechanism that selects one position: the argmax of ``scores (B, N)`` (``-inf`` at
    padding), read with a gather — no normaliser, no weighted sum. ``weights`` and ``probs`` are the
    one-hot choice (the policy actually followed)."""
    index = scores.argmax(dim=-1)
    weights = torch.zeros_like(scores).scatter_(1, index.unsqueeze(1), 1.0)
    return AttentionOutput(gather_rows(values, index), weights, weights)
