"""A plugin that registers a mechanism under a shipped name ("soft") without saying it means to replace it:
refused at start-up, in one line naming both. Loaded by the registry tests."""

from __future__ import annotations

from lightning_attn.attention import MECHANISMS
from lightning_attn.attention.soft import SoftAttention, SoftAttentionConfig


class MySoftAttention(SoftAttention):
    pass


MECHANISMS.register("soft", (MySoftAttention, SoftAttentionConfig))
