"""A mechanism the package does not know: soft attention with a uniform leak, its own loss term and metric.

It registers itself when imported — as any plugin named in ``LIGHTNING_ATTN_PLUGINS`` does.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor

from lightning_attn.attention import MECHANISMS, AttentionOutput, AttentionTrace, TrainingTerms
from lightning_attn.attention.base import weighted_sum
from lightning_attn.attention.soft import SoftAttention, SoftAttentionConfig


@dataclass
class LeakyAttentionConfig(SoftAttentionConfig):
    mechanism: str = "leaky"
    leak: float = 0.1  # share of the weight spread evenly over the real positions
    sharpness_weight: float = 0.01  # λ of a penalty on the entropy of the attention


class LeakyAttention(SoftAttention):
    training_metrics = ("leak_entropy",)

    def __init__(self, query_dim: int, key_dim: int, config: LeakyAttentionConfig | None = None):
        self.config = config or LeakyAttentionConfig()
        super().__init__(query_dim, key_dim, self.config)

    def read(self, query: Tensor, prepared_keys: Tensor, values: Tensor, mask: Tensor) -> AttentionOutput:
        soft = super().read(query, prepared_keys, values, mask)
        even = mask.float() / mask.float().sum(-1, keepdim=True)
        weights = (1 - self.config.leak) * soft.probs + self.config.leak * even
        entropy = -(weights.clamp_min(1e-12).log() * weights).sum(-1)
        return AttentionOutput(weighted_sum(weights, values), weights, weights, entropy=entropy)

    def training_terms(self, trace: AttentionTrace, token_log_lik: Tensor, step_mask: Tensor) -> TrainingTerms:
        mean_entropy = (trace.entropy * step_mask).sum() / step_mask.sum().clamp_min(1)
        return TrainingTerms(
            losses={"sharpness": self.config.sharpness_weight * mean_entropy},
            metrics={"leak_entropy": mean_entropy.detach()},
        )


MECHANISMS.register("leaky", (LeakyAttention, LeakyAttentionConfig))
