"""Greedy and batched beam-search decoding, shared by every decoder in :mod:`lightning_attn.models`.

A decoder takes part by offering ``step(prev_tokens (B,), state) -> (logits (B, V), state, AttentionOutput)``
and a state whose ``select(index)`` returns the rows ``index`` (see :class:`BatchState`).

Beam search advances all ``B x K`` hypotheses together as one batch of ``B·K`` rows. A hypothesis
that has produced ``</s>`` is frozen: it can only extend with ``<pad>`` at no cost, so its score
stays put while it competes with the live ones. The winner maximises ``log p / length ** length_penalty``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, fields
from typing import Any

import torch
from torch import Tensor

from ..attention import AttentionTrace
from ..data.codec import BOS, EOS, PAD

Step = Callable[[Tensor, Any], tuple[Tensor, Any, Any]]


class BatchState:
    """Mixin for decoder-state dataclasses whose fields are all batch-first tensors."""

    def select(self, index: Tensor):
        """Rows ``index`` of every field (beam search reorders and expands with this)."""
        return type(self)(*(getattr(self, f.name)[index] for f in fields(self)))


@dataclass
class DecoderOutput:
    """A teacher-forced pass.

    Attributes:
        logits: ``(B, T, V)``.
        trace: the attention of every step (:class:`~lightning_attn.attention.AttentionTrace`): weights and
            distributions ``(B, T, N)``, and what the mechanism's training terms read.
    """

    logits: Tensor
    trace: AttentionTrace


def teacher_forcing(step: Step, state: Any, tgt_in: Tensor) -> DecoderOutput:
    """Run ``step`` over the gold previous tokens ``tgt_in (B, T)`` (starting with ``<s>``)."""
    logits, attention = [], []
    for t in range(tgt_in.size(1)):
        step_logits, state, att = step(tgt_in[:, t], state)
        logits.append(step_logits)
        attention.append(att)
    return DecoderOutput(torch.stack(logits, dim=1), AttentionTrace.stack(attention))


@torch.no_grad()
def greedy(step: Step, state: Any, batch: int, max_len: int, device: torch.device) -> tuple[Tensor, Tensor]:
    """Most likely token at each step.

    Returns:
        tokens ``(B, L)`` (``</s>`` then ``<pad>`` after the end) and attention weights ``(B, L, N)``.
    """
    prev = torch.full((batch,), BOS, dtype=torch.long, device=device)
    finished = torch.zeros_like(prev, dtype=torch.bool)
    tokens, weights = [], []
    for _ in range(max_len):
        logits, state, att = step(prev, state)
        prev = logits.argmax(-1).masked_fill(finished, PAD)
        tokens.append(prev)
        weights.append(att.weights)
        finished |= prev == EOS
        if finished.all():
            break
    return torch.stack(tokens, 1), torch.stack(weights, 1)


@torch.no_grad()
def beam_search(
    step: Step, state: Any, batch: int, *, max_len: int, beam_size: int, length_penalty: float, device: torch.device
) -> Tensor:
    """Decode; returns tokens ``(B, L)`` ending in ``</s>`` (if produced) then ``<pad>``."""
    k = beam_size
    # 1. give every sentence K copies of its state
    state = state.select(torch.arange(batch, device=device).repeat_interleave(k))
    # only the first copy is live at the start, so the K beams do not all pick the same words
    scores = torch.full((batch, k), float("-inf"), device=device)
    scores[:, 0] = 0.0
    prev = torch.full((batch * k,), BOS, dtype=torch.long, device=device)
    finished = torch.zeros(batch, k, dtype=torch.bool, device=device)
    lengths = torch.zeros(batch, k, device=device)
    history = torch.empty(batch, k, 0, dtype=torch.long, device=device)
    for _ in range(max_len):
        logits, state, _ = step(prev, state)
        log_p = torch.log_softmax(logits.float(), dim=-1).view(batch, k, -1)
        # 2. frozen hypotheses may only add <pad>, for free
        frozen = torch.full_like(log_p[0, 0], float("-inf"))
        frozen[PAD] = 0.0
        log_p = torch.where(finished.unsqueeze(-1), frozen, log_p)
        # 3. best K continuations of each sentence among its K x V candidates
        vocab = log_p.size(-1)
        candidates = (scores.unsqueeze(-1) + log_p).view(batch, -1)
        scores, flat = candidates.topk(k, dim=-1)
        origin, token = flat // vocab, flat % vocab
        # 4. reorder every per-hypothesis tensor to follow its origin
        finished = finished.gather(1, origin)
        lengths = lengths.gather(1, origin) + (~finished).float()
        history = torch.cat([history.gather(1, origin.unsqueeze(-1).expand_as(history)), token.unsqueeze(-1)], dim=-1)
        rows = (origin + torch.arange(batch, device=device).unsqueeze(1) * k).view(-1)
        state = state.select(rows)
        finished = finished | (token == EOS)
        prev = token.view(-1)
        if finished.all():
            break
    # 5. pick the best length-normalised hypothesis per sentence
    normalised = scores / lengths.clamp_min(1.0).pow(length_penalty)
    best = normalised.argmax(dim=-1)
    return history[torch.arange(batch, device=device), best]
