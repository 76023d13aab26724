"""Exact marginal likelihood over the attention choice (Deng et al., 2018, "Latent Alignment and
Variational Attention").

Hard attention treats the attended position ``z_t`` as a latent variable and samples it. Here it is
summed out exactly:

    p(y_t | ·) = Σ_i α_i · p(y_t | ·, z_t = i)

— the output layer reads each position's value on its own, and the mixture of those output
distributions, weighted by the attention distribution α, is the prediction. Training is plain
backpropagation of this likelihood: no sampling, no estimator. The cost is one output distribution per
position (``N × V`` per step); decoding uses the ``decode_top_k`` most likely positions only, renormalised
(Deng et al.'s top-K approximation), and ``train_top_k`` does the same in training where ``N × V`` is too
large (0: the exact sum).

The decoder's context fed back to the next step is the expectation ``Σ_i α_i v_i``, as in soft attention.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

from .base import AttentionOutput, entropy_from_log_probs, weighted_sum
from .soft import SoftAttention, SoftAttentionConfig


@dataclass
class MarginalAttentionConfig(SoftAttentionConfig):
    """Exact marginal likelihood attention; the scorer as soft attention's."""

    mechanism: str = "marginal"
    decode_top_k: int = 5  # evaluation sums over the K most likely positions (0: all of them)
    train_top_k: int = 0  # training likewise; 0: the exact sum over every position


class MarginalAttention(SoftAttention):
    """Args:
    query_dim, key_dim: as :class:`SoftAttention`.
    config: the scorer and the top-K approximations (:class:`MarginalAttentionConfig`).
    """

    unsupported = {
        place: (
            "summing the attended position out is exact only where the output layer reads the context "
            "directly; in a Transformer each head's context passes through later layers together with the "
            "other heads', so the sum over every joint choice is out of reach (use model=seq2seq or "
            "model=captioner)"
        )
        for place in ("cross", "self")
    }

    def __init__(self, query_dim: int, key_dim: int, config: MarginalAttentionConfig | None = None):
        c = config or MarginalAttentionConfig()
        super().__init__(query_dim, key_dim, c)
        if c.decode_top_k < 0 or c.train_top_k < 0:
            raise ValueError("decode_top_k and train_top_k must be >= 0 (0: every position)")
        self.decode_top_k, self.train_top_k = c.decode_top_k, c.train_top_k

    def read(self, query: Tensor, prepared_keys: Tensor, values: Tensor, mask: Tensor) -> AttentionOutput:
        """α and the expected context, as soft attention; log α kept for :meth:`readout`."""
        log_probs = self.distribution(query, prepared_keys, mask)
        probs = log_probs.exp()
        entropy = entropy_from_log_probs(log_probs, mask)
        return AttentionOutput(
            weighted_sum(probs, values), probs, probs, entropy=entropy, extras={"log_probs": log_probs}
        )

    def readout(self, att: AttentionOutput, values: Tensor, predict: Callable[[Tensor], Tensor]) -> Tensor:
        """``log Σ_i α_i p(y | ·, z = i)``, ``(B, V)``: log-probabilities, so valid logits for any loss or search."""
        log_alpha = att.extras["log_probs"]  # (B, N), -inf at padding (its gradient stays finite)
        k = self.train_top_k if self.training else self.decode_top_k
        if 0 < k < values.size(1):
            # 1. the K most likely positions, α renormalised over them
            top, index = log_alpha.topk(k, dim=-1)
            log_alpha = torch.log_softmax(top, dim=-1)
            values = values.gather(1, index.unsqueeze(-1).expand(-1, -1, values.size(-1)))
        # 2. each position's output distribution, 3. mixed by α in log space
        log_p = torch.log_softmax(predict(values), dim=-1)  # (B, K, V)
        return torch.logsumexp(log_alpha.unsqueeze(-1) + log_p, dim=1)
