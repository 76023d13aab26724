"""The one interface every attention mechanism implements.

A mechanism turns queries and a set of keys/values into context vectors. A recurrent decoder asks one
query per step; a Transformer layer asks one per head and position::

    query   (B, Dq)         or (B, H, T, Dq)   "where do I look?"
    keys    (B, N, Dk)      or (B, H, N, Dk)   what the positions are matched on
    values  (B, N, Dv)      or (B, H, N, Dv)   what the context is built from
    mask    (B, N) bool     or broadcastable to (B, H, T, N): True where a query may read a position
                            (padding is False; so is the future, in causal self-attention)
    ──> AttentionOutput(context (B, Dv) or (B, H, T, Dv), weights (B, N) or (B, H, T, N), ...)

In general the query has the leading dimensions ``(…, T)`` of the keys' ``(…)`` plus the queries' own
``T``; the single-query form is ``T`` left out. A mechanism implements :meth:`Attention.read` once, for
the general form; :meth:`Attention.attend` brings the single query to it.

Decoders call the mechanism once per output step over the same keys, so the work that depends
only on the keys (a projection, for most scorers) is split off into :meth:`Attention.prepare`
and done once per sequence; :meth:`Attention.forward` is the one-shot form of the same thing.

Where a mechanism may be used is said by :attr:`Attention.unsupported`: ``recurrent`` (a recurrent
decoder's one query per step, read by its output layer), ``cross`` (a Transformer's cross-attention) and
``self`` (a Transformer's self-attention, causal in its decoder). A place it names is refused when the model
is built, with the reason given there.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import ClassVar

import torch
from torch import Tensor, nn

TRAITS = ("stochastic", "selects_one", "sparse", "control")
#: where a mechanism can be used (module docstring)
PLACES = ("recurrent", "cross", "self")


@dataclass
class AttentionOutput:
    """What one attention step returns (shapes of the single-query form; with many queries each gains the
    query's leading dimensions, e.g. ``context (B, H, T, Dv)``).

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

    def squeeze(self, dim: int) -> AttentionOutput:
        """Every tensor without its (size-1) dimension ``dim``: the queries' ``T``, after a single query."""

        def one(t: Tensor | None) -> Tensor | None:
            return None if t is None else t.squeeze(dim)

        extras = {k: v.squeeze(dim) for k, v in self.extras.items()}
        return AttentionOutput(
            one(self.context), one(self.weights), one(self.probs), one(self.log_prob), one(self.entropy), extras
        )


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
    """Base class: ``prepare`` once per sequence, ``attend`` once per decoder step (or per Transformer layer),
    :meth:`readout` for how the decoder's output reads what was attended, and :meth:`training_terms` for
    whatever a mechanism needs beyond the task's likelihood. A mechanism implements :meth:`read`.

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
    #: the places (:data:`PLACES`) the mechanism cannot be used in, each with the reason a user is told
    unsupported: ClassVar[dict[str, str]] = {}
    #: where this instance is used (:data:`PLACES`), set by :func:`~lightning_attn.attention.build_attention`
    place: str = "recurrent"

    def placed(self, place: str) -> Attention:
        """This mechanism, to be used in ``place`` (:data:`PLACES`): what it needs there, and nothing more."""
        self.place = place
        return self

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

    def read(self, query: Tensor, prepared_keys: Tensor, values: Tensor, mask: Tensor) -> AttentionOutput:
        """The mechanism itself, over many queries: ``query (…, T, Dq)``, ``prepared_keys (…, N, *)``,
        ``values (…, N, Dv)``, ``mask (…, T, N)`` bool (every query row with at least one True) ->
        ``context (…, T, Dv)``, ``weights (…, T, N)``, ``log_prob``/``entropy (…, T)``."""
        raise NotImplementedError

    def attend(self, query: Tensor, prepared_keys: Tensor, values: Tensor, mask: Tensor | None) -> AttentionOutput:
        """One query per row ``(…, Dq)``, or many ``(…, T, Dq)`` (module docstring); ``mask`` broadcastable to
        the scores, ``None``: every position real."""
        single = query.dim() == values.dim() - 1
        many = query.unsqueeze(-2) if single else query
        mask = full_mask(values) if mask is None else mask
        if single:
            mask = mask.unsqueeze(-2)
        out = self.read(many, prepared_keys, values, mask.expand(*many.shape[:-1], values.size(-2)))
        return out.squeeze(many.dim() - 2) if single else out

    def context(self, query: Tensor, prepared_keys: Tensor, values: Tensor, mask: Tensor | None) -> Tensor:
        """Only the context of :meth:`attend`, for a caller that keeps nothing else (a mechanism may have a
        faster way to it)."""
        return self.attend(query, prepared_keys, values, mask).context

    def self_attention_mask(self, mask: Tensor, query_positions: Tensor, key_positions: Tensor) -> Tensor:
        """The mask self-attention reads with, from ``mask`` (padding and causality) and the positions of the
        queries ``(T,)`` and keys ``(N,)``: ``mask`` itself, unless the mechanism restricts it (a window)."""
        return mask

    def forward(self, query: Tensor, keys: Tensor, values: Tensor, mask: Tensor | None = None) -> AttentionOutput:
        return self.attend(query, self.prepare(keys), values, mask)


def full_mask(values: Tensor) -> Tensor:
    """An all-True ``(…, N)`` mask for values ``(…, N, Dv)`` without padding."""
    return torch.ones(values.shape[:-1], dtype=torch.bool, device=values.device)


def masked_log_softmax(scores: Tensor, mask: Tensor) -> Tensor:
    """``log_softmax`` over real positions; padding gets ``-inf`` (so probability exactly 0).

    Args:
        scores: ``(…, N)`` raw scores.
        mask: ``(…, N)`` bool, True at real positions; every row needs at least one.
    """
    return torch.log_softmax(scores.masked_fill(~mask, float("-inf")), dim=-1)


def entropy_from_log_probs(log_probs: Tensor, mask: Tensor) -> Tensor:
    """Entropy ``(…,)`` in nats of the distributions ``(…, N)``; padding (log 0) contributes 0.

    Zeroing ``log p`` at padding *before* the product keeps ``0 · (-inf)`` (NaN) out of both the
    value and its gradient.
    """
    safe = log_probs.masked_fill(~mask, 0.0)
    return -(safe.exp() * safe).sum(dim=-1)


def weighted_sum(weights: Tensor, values: Tensor) -> Tensor:
    """``(…, T, N) x (…, N, D) -> (…, T, D)``."""
    return torch.matmul(weights, values)


def gather_rows(values: Tensor, index: Tensor) -> Tensor:
    """Pick one position per query without a one-hot matmul. ``(…, N, D), (…, T) -> (…, T, D)``."""
    return torch.take_along_dim(values, index.unsqueeze(-1), dim=-2)


def gather_many(values: Tensor, index: Tensor) -> Tensor:
    """Pick ``K`` positions per query. ``(…, N, D), (…, T, K) -> (…, T, K, D)``."""
    return torch.take_along_dim(values.unsqueeze(-3), index.unsqueeze(-1), dim=-2)


def entropy_of(weights: Tensor) -> Tensor:
    """Entropy ``(…,)`` in nats of distributions ``(…, N)`` that may hold exact zeros (``0 log 0 = 0``)."""
    return -(weights * torch.log(weights.clamp_min(1e-30))).sum(dim=-1)


def masked_scores(scores: Tensor, mask: Tensor) -> Tensor:
    """``scores`` with ``-inf`` at padding: no normaliser gives padding any weight."""
    return scores.masked_fill(~mask, float("-inf"))


def read_best(scores: Tensor, values: Tensor) -> AttentionOutput:
    """Evaluation of a mechanism that selects one position: the argmax of ``scores (…, T, N)`` (``-inf`` at
    padding), read with a gather — no normaliser, no weighted sum. ``weights`` and ``probs`` are the
    one-hot choice (the policy actually followed)."""
    index = scores.argmax(dim=-1)
    weights = torch.zeros_like(scores).scatter_(-1, index.unsqueeze(-1), 1.0)
    return AttentionOutput(gather_rows(values, index), weights, weights)
