"""Fixed work for the speed pass: the same number of decoder steps and the same training step for every
mechanism, whatever the model would choose to emit.

A decode runs the shared greedy and beam-search code (:mod:`lightning_attn.models.decoding`) with ``</s>``
forbidden, so every call takes exactly ``steps`` decoder steps: a less accurate model cannot look faster or
slower because it stops earlier or later. Its time is per token (per decoder step). A training step is the
teacher-forced loss — the likelihood and the mechanism's own training terms (REINFORCE for hard attention) —
and its backward pass, gradients freed before each call.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..data.codec import EOS, PAD
from ..models import beam_search, greedy


def never_ends(step: Callable) -> Callable:
    """A decoder step whose ``</s>`` can never win: decoding runs to its length limit."""

    def forced(prev: Tensor, state: Any):
        logits, state, att = step(prev, state)
        return logits.index_fill(-1, torch.tensor([EOS], device=logits.device), float("-inf")), state, att

    return forced


def decode(model: nn.Module, start: Callable[[], Any], rows: int, *, steps: int, beam: int = 1) -> Callable[[], None]:
    """One call: ``start()`` the decoder state of ``rows`` inputs, then ``steps`` greedy (``beam`` 1) or
    beam-search steps, in eval mode without gradients."""
    step = never_ends(model.decoder.step)
    device = next(model.parameters()).device

    @torch.inference_mode()
    def call() -> None:
        model.eval()
        state = start()
        if beam > 1:
            beam_search(step, state, rows, max_len=steps, beam_size=beam, length_penalty=1.0, device=device)
        else:
            greedy(step, state, rows, steps, device)

    return call


def training_step(model: nn.Module, loss: Callable[[], Tensor]) -> Callable[[], None]:
    """One call: ``loss()`` forward in training mode, then its backward pass (gradients freed first)."""

    def call() -> None:
        model.train()
        model.zero_grad(set_to_none=True)
        loss().backward()

    return call


def decoder_loss(model: nn.Module, memory: Tensor, tgt_in: Tensor, tgt_out: Tensor) -> Tensor:
    """The teacher-forced loss of ``model``'s decoder over given ``memory (B, N, M)``, as a task trains it:
    the tokens' negative log-likelihood plus the mechanism's own training terms."""
    out = model.decoder.teacher_forced(model.start(memory), tgt_in)
    token_nll = F.cross_entropy(out.logits.transpose(1, 2), tgt_out, ignore_index=PAD, reduction="none")
    step_mask = tgt_out != PAD
    loss = token_nll.sum() / step_mask.sum()
    terms = model.attention.training_terms(out.trace, -token_nll, step_mask)
    return loss + sum(terms.losses.values(), torch.zeros((), device=memory.device))
