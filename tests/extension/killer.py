"""A mechanism whose training step kills its own process with SIGKILL — what the kernel's OOM killer does
to a worker whose trial wants more memory than the machine has. Loaded as a plugin by the retry-cap test."""

from __future__ import annotations

import os
import signal
from dataclasses import dataclass

from torch import Tensor

from lightning_attn.attention import MECHANISMS, AttentionOutput
from lightning_attn.attention.soft import SoftAttention, SoftAttentionConfig


@dataclass
class KillerAttentionConfig(SoftAttentionConfig):
    mechanism: str = "killer"


class KillerAttention(SoftAttention):
    def __init__(self, query_dim: int, key_dim: int, config: KillerAttentionConfig | None = None):
        super().__init__(query_dim, key_dim, config or KillerAttentionConfig())

    def attend(self, query: Tensor, prepared_keys: Tensor, values: Tensor, mask: Tensor | None) -> AttentionOutput:
        if self.training:
            os.kill(os.getpid(), signal.SIGKILL)
        return super().attend(query, prepared_keys, values, mask)


MECHANISMS.register("killer", (KillerAttention, KillerAttentionConfig))
