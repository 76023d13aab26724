"""A pre-LayerNorm Transformer (Vaswani et al., 2017; pre-LN as Xiong et al., 2020) whose attentions are the
toolkit's mechanisms: the configured one in cross-attention (``attention.where``: ``cross``, ``self`` or
``both``), soft attention in the others::

    encoder layer:  x = x + SelfAttention(LN(x))
                    x = x + FFN(LN(x))
    decoder layer:  y = y + CausalSelfAttention(LN(y))
                    y = y + CrossAttention(LN(y), memory)
                    y = y + FFN(LN(y))

Every attention projects queries, keys and values into ``H`` heads of width ``W / H`` and hands the
mechanism queries ``(B, H, T, W/H)`` scaled by ``1/sqrt(W/H)``: a head scores by the scaled dot product,
whatever ``attention.score`` says (that is the recurrent decoders' choice). Soft attention runs through
``scaled_dot_product_attention`` wherever nothing but the context is kept.

Decoding is incremental: each step runs the new position only, its self-attention reading the keys and
values cached for the positions before it (:class:`TransformerState`); cross-attention keys and values are
computed once per input. Training runs every position at once under a causal mask.

What instrumentation and pictures read (:class:`~lightning_attn.attention.AttentionTrace`) is one decoder
layer's cross-attention (``trace_layer``), one head's or the heads' mean (``trace_head``); a stochastic
mechanism's ``log_prob`` sums every head and layer's choice (the joint choice its estimator rewards) and
``entropy`` is the mean over the heads and layers read.

Translation: :class:`Transformer` (token embeddings and positions, encoder, decoder). Captioning:
:class:`CaptionTransformer` (the captioner's grid encoder, a projection to ``W``, ``encoder_layers`` over the
regions, the decoder).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn

from ..attention import Attention, AttentionOutput, AttentionTrace, build_attention, config_fields
from ..data.codec import PAD
from .captioner import GridEncoderConfig, ImageCaptioner, build_grid_encoder
from .decoding import DecoderOutput
from .seq2seq import EncoderDecoder

POSITIONS = ("sinusoidal", "learned")


@dataclass
class TransformerConfig:
    """Encoder-decoder Transformer, pre-LayerNorm."""

    kind: str = "transformer"
    width: int = 128  # W, the model's width; a multiple of heads
    heads: int = 4
    encoder_layers: int = 2  # captioning: layers over the image regions (0: the regions as the CNN gives them)
    decoder_layers: int = 2
    ffn: int = 512  # the feed-forward layers' hidden width
    dropout: float = 0.1
    positions: str = "sinusoidal"  # sinusoidal (any length) | learned (max_positions of them; later ones: the last)
    max_positions: int = 256
    share_embeddings: bool = True  # the decoder's output layer is its input embedding (Press & Wolf, 2017)
    trace_layer: int = -1  # the decoder layer whose cross-attention instrumentation and pictures read
    trace_head: int | None = None  # its head, or null: the mean of its heads
    # captioning: the CNN that turns an image into the regions (as model=captioner's encoder settings)
    image: GridEncoderConfig = field(default_factory=GridEncoderConfig)


def _check(c: TransformerConfig) -> None:
    if c.width % c.heads:
        raise ValueError(f"model.width={c.width} must be a multiple of model.heads={c.heads}")
    if c.positions not in POSITIONS:
        raise ValueError(f"model.positions={c.positions!r}: choose one of {', '.join(POSITIONS)}")
    if not -c.decoder_layers <= c.trace_layer < c.decoder_layers:
        raise ValueError(f"model.trace_layer={c.trace_layer}: the decoder has {c.decoder_layers} layers")
    if c.trace_head is not None and not 0 <= c.trace_head < c.heads:
        raise ValueError(f"model.trace_head={c.trace_head}: the model has {c.heads} heads (null: their mean)")


def mechanisms(attention: Any, head_dim: int) -> tuple[Attention, Attention]:
    """The cross- and self-attention mechanisms ``attention.where`` asks for (soft where it does not)."""
    fields = config_fields(attention)
    if "score" in fields:
        fields["score"] = "dot"
    where = fields.get("where", "cross")
    soft = {"mechanism": "soft", "score": "dot"}
    cross = build_attention(fields if where in ("cross", "both") else soft, head_dim, head_dim, place="cross")
    own = build_attention(fields if where in ("self", "both") else soft, head_dim, head_dim, place="self")
    return cross, own


def embedding(vocab: int, width: int) -> nn.Embedding:
    """Token embeddings of scale ``W^-1/2`` (times ``sqrt(W)`` when read): as an output layer too, unit-scale logits."""
    embed = nn.Embedding(vocab, width, padding_idx=PAD)
    nn.init.normal_(embed.weight, std=width**-0.5)
    with torch.no_grad():
        embed.weight[PAD].zero_()
    return embed


def split_heads(x: Tensor, heads: int) -> Tensor:
    """``(B, T, W) -> (B, H, T, W/H)``."""
    return x.view(x.size(0), x.size(1), heads, -1).transpose(1, 2)


def merge_heads(x: Tensor) -> Tensor:
    """``(B, H, T, D) -> (B, T, H·D)``."""
    return x.transpose(1, 2).reshape(x.size(0), x.size(2), -1)


class Positions(nn.Module):
    """Position encodings ``(L, W)`` for positions ``start .. start + L - 1``: sinusoidal (any length) or learned."""

    def __init__(self, width: int, kind: str, max_positions: int):
        super().__init__()
        self.width, self.max_positions = width, max_positions
        self.learned = nn.Embedding(max_positions, width) if kind == "learned" else None
        self.register_buffer("frequencies", torch.exp(torch.arange(0, width, 2) * (-math.log(10000.0) / width)))

    def forward(self, start: int, length: int) -> Tensor:
        positions = torch.arange(start, start + length, device=self.frequencies.device)
        if self.learned is not None:  # a position past the last learned one reads the last one
            return self.learned(positions.clamp_max(self.max_positions - 1))
        angles = positions.unsqueeze(1) * self.frequencies
        return torch.stack([angles.sin(), angles.cos()], dim=-1).flatten(1)[:, : self.width]


class MultiHeadAttention(nn.Module):
    """The projections around a mechanism: queries from ``x``, keys and values from the memory, ``H`` heads."""

    def __init__(self, width: int, heads: int):
        super().__init__()
        self.heads = heads
        self.query, self.key, self.value, self.out = (nn.Linear(width, width) for _ in range(4))

    def keys_values(self, memory: Tensor) -> tuple[Tensor, Tensor]:
        """``(B, N, W) -> keys, values (B, H, N, W/H)``."""
        return split_heads(self.key(memory), self.heads), split_heads(self.value(memory), self.heads)

    def forward(
        self, x: Tensor, keys: Tensor, values: Tensor, mask: Tensor, mechanism: Attention, keep: bool
    ) -> tuple[Tensor, AttentionOutput | None]:
        """``x (B, T, W)`` reads ``keys, values (B, H, N, W/H)`` where ``mask`` (broadcastable to ``(B, H, T, N)``)
        allows: ``(B, T, W)``, and the mechanism's whole output where ``keep`` asks for it."""
        query = split_heads(self.query(x), self.heads)
        query = query * query.size(-1) ** -0.5
        prepared = mechanism.prepare(keys)
        if keep:
            att = mechanism.attend(query, prepared, values, mask)
            return self.out(merge_heads(att.context)), att
        return self.out(merge_heads(mechanism.context(query, prepared, values, mask))), None


class FeedForward(nn.Sequential):
    def __init__(self, width: int, hidden: int, dropout: float):
        super().__init__(nn.Linear(width, hidden), nn.GELU(), nn.Dropout(dropout), nn.Linear(hidden, width))


class EncoderLayer(nn.Module):
    def __init__(self, c: TransformerConfig):
        super().__init__()
        self.norm1, self.norm2 = nn.LayerNorm(c.width), nn.LayerNorm(c.width)
        self.attention = MultiHeadAttention(c.width, c.heads)
        self.ffn = FeedForward(c.width, c.ffn, c.dropout)
        self.dropout = nn.Dropout(c.dropout)

    def forward(self, x: Tensor, mask: Tensor, mechanism: Attention) -> Tensor:
        h = self.norm1(x)
        out, _ = self.attention(h, *self.attention.keys_values(h), mask, mechanism, keep=False)
        x = x + self.dropout(out)
        return x + self.dropout(self.ffn(self.norm2(x)))


class Encoder(nn.Module):
    """Self-attention layers over a memory ``(B, N, W)`` with padding ``mask (B, N)``; ends in a LayerNorm."""

    def __init__(self, c: TransformerConfig, mechanism: Attention):
        super().__init__()
        self.layers = nn.ModuleList(EncoderLayer(c) for _ in range(c.encoder_layers))
        self.norm = nn.LayerNorm(c.width)
        self.mechanism = mechanism

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:
        n = x.size(1)
        positions = torch.arange(n, device=x.device)
        # a padding row reads itself: never a row with nothing to read (whose NaN would reach the real rows)
        itself = torch.eye(n, dtype=torch.bool, device=x.device)
        allowed = self.mechanism.self_attention_mask(mask[:, None, None, :], positions, positions) | itself
        for layer in self.layers:
            x = layer(x, allowed, self.mechanism)
        return self.norm(x)


class DecoderLayer(nn.Module):
    def __init__(self, c: TransformerConfig):
        super().__init__()
        self.norm1, self.norm2, self.norm3 = (nn.LayerNorm(c.width) for _ in range(3))
        self.self_attention = MultiHeadAttention(c.width, c.heads)
        self.cross_attention = MultiHeadAttention(c.width, c.heads)
        self.ffn = FeedForward(c.width, c.ffn, c.dropout)
        self.dropout = nn.Dropout(c.dropout)

    def forward(
        self,
        y: Tensor,
        past: tuple[Tensor, Tensor] | None,
        self_mask: Tensor,
        memory: tuple[Tensor, Tensor, Tensor],
        mechanisms: tuple[Attention, Attention],
        keep: bool,
    ) -> tuple[Tensor, tuple[Tensor, Tensor], AttentionOutput | None]:
        """``y (B, T, W)`` after the positions ``past`` holds the keys and values of (none in training);
        ``memory``: this layer's cross-attention keys, values and mask. Returns ``y``, the self-attention's
        keys and values so far, and the cross-attention's output where ``keep`` asks for it."""
        cross, own = mechanisms
        h = self.norm1(y)
        keys, values = self.self_attention.keys_values(h)
        if past is not None:
            keys, values = torch.cat([past[0], keys], dim=2), torch.cat([past[1], values], dim=2)
        out, _ = self.self_attention(h, keys, values, self_mask, own, keep=False)
        y = y + self.dropout(out)
        out, att = self.cross_attention(self.norm2(y), *memory, cross, keep=keep)
        y = y + self.dropout(out)
        return y + self.dropout(self.ffn(self.norm3(y))), (keys, values), att


@dataclass
class TransformerState:
    """A decoder's state between steps; every field batch-first (beam search selects rows)."""

    keys: Tensor  # (B, L, H, N, W/H) each decoder layer's cross-attention keys
    values: Tensor  # (B, L, H, N, W/H)
    mask: Tensor  # (B, N) bool, True at real memory positions
    past_keys: Tensor  # (B, L, H, t, W/H) each layer's self-attention keys of the t positions decoded
    past_values: Tensor  # (B, L, H, t, W/H)

    def select(self, index: Tensor) -> TransformerState:
        return TransformerState(*(getattr(self, f)[index] for f in self.__dataclass_fields__))


class Decoder(nn.Module):
    """Token embeddings and positions, decoder layers, a LayerNorm and the output layer."""

    def __init__(self, vocab: int, c: TransformerConfig, cross: Attention, own: Attention, where: str):
        super().__init__()
        self.embed = embedding(vocab, c.width)
        self.positions = Positions(c.width, c.positions, c.max_positions)
        self.layers = nn.ModuleList(DecoderLayer(c) for _ in range(c.decoder_layers))
        self.norm = nn.LayerNorm(c.width)
        self.output = nn.Linear(c.width, vocab, bias=False)
        if c.share_embeddings:
            self.output.weight = self.embed.weight
        self.dropout = nn.Dropout(c.dropout)
        self.cross_attention, self.self_attention = cross, own
        self.where = where
        self.trace_layer = c.trace_layer % c.decoder_layers
        self.trace_head = c.trace_head

    @property
    def attention(self) -> Attention:
        """The configured mechanism (where it is in self-attention only, that one)."""
        return self.self_attention if self.where == "self" else self.cross_attention

    def scoring(self, encoder: Encoder) -> list[nn.Parameter]:
        """The parameters that score where the configured mechanism attends — the query and key projections of
        every attention it is used in (``encoder``'s too where ``where`` puts it in self-attention) and its own:
        what its gradient estimator's variance is measured on."""
        used = [layer.cross_attention for layer in self.layers] if self.where in ("cross", "both") else []
        if self.where in ("self", "both"):
            used += [layer.self_attention for layer in self.layers] + [layer.attention for layer in encoder.layers]
        projections = [p for a in used for p in (*a.query.parameters(), *a.key.parameters())]
        return projections + list(self.attention.parameters())

    def start(self, memory: Tensor, mask: Tensor | None = None) -> TransformerState:
        """The state before the first step, over ``memory (B, N, W)`` (``mask`` None: every position real)."""
        if mask is None:
            mask = torch.ones(memory.shape[:2], dtype=torch.bool, device=memory.device)
        pairs = [layer.cross_attention.keys_values(memory) for layer in self.layers]
        keys, values = (torch.stack(t, dim=1) for t in zip(*pairs))
        empty = keys[:, :, :, :0]
        return TransformerState(keys, values, mask, empty, empty)

    def _embed(self, tokens: Tensor, start: int) -> Tensor:
        x = self.embed(tokens) * math.sqrt(self.embed.embedding_dim)
        return self.dropout(x + self.positions(start, tokens.size(1)))

    def _run(self, y: Tensor, state: TransformerState, self_mask: Tensor, cached: bool):
        """Every layer over ``y``; the cross-attention outputs kept (the trace layer's, every layer's for a
        stochastic mechanism in training), the self-attention keys and values so far."""
        memory_mask = state.mask[:, None, None, :]
        every = self.cross_attention.stochastic and self.training
        kept, pasts = [], []
        for i, layer in enumerate(self.layers):
            past = (state.past_keys[:, i], state.past_values[:, i]) if cached else None
            memory = (state.keys[:, i], state.values[:, i], memory_mask)
            keep = every or i == self.trace_layer
            y, kv, att = layer(y, past, self_mask, memory, (self.cross_attention, self.self_attention), keep)
            kept.append(att)
            pasts.append(kv)
        return self.output(self.norm(y)), kept, pasts

    def _trace(self, kept: list[AttentionOutput | None]) -> AttentionTrace:
        """What the task reads of the cross-attention, ``(B, T, …)`` (module docstring)."""
        traced = kept[self.trace_layer]

        def view(t: Tensor) -> Tensor:  # (B, H, T, N) -> (B, T, N)
            return t.mean(dim=1) if self.trace_head is None else t[:, self.trace_head]

        outputs = [a for a in kept if a is not None]
        log_prob = None if traced.log_prob is None else sum(a.log_prob.sum(dim=1) for a in outputs)
        entropy = None if traced.entropy is None else torch.stack([a.entropy.mean(dim=1) for a in outputs]).mean(0)
        extras = {} if traced.entropy is None else {"head_entropy": traced.entropy.transpose(1, 2)}
        return AttentionTrace(view(traced.weights), view(traced.probs), log_prob, entropy, extras)

    def teacher_forced(self, state: TransformerState, tgt_in: Tensor) -> DecoderOutput:
        """Every position at once, under a causal mask: ``tgt_in (B, T)`` starting with ``<s>``."""
        t = tgt_in.size(1)
        positions = torch.arange(t, device=tgt_in.device)
        causal = torch.ones(t, t, dtype=torch.bool, device=tgt_in.device).tril()
        self_mask = self.self_attention.self_attention_mask(causal, positions, positions)
        logits, kept, _ = self._run(self._embed(tgt_in, 0), state, self_mask, cached=False)
        return DecoderOutput(logits, self._trace(kept))

    def step(self, prev_tokens: Tensor, state: TransformerState) -> tuple[Tensor, TransformerState, AttentionOutput]:
        """One position: ``prev_tokens (B,) -> logits (B, V)``, its self-attention reading the cached positions."""
        t = state.past_keys.size(3)
        device = prev_tokens.device
        mask = torch.ones(1, t + 1, dtype=torch.bool, device=device)
        self_mask = self.self_attention.self_attention_mask(
            mask, torch.tensor([t], device=device), torch.arange(t + 1, device=device)
        )
        logits, kept, pasts = self._run(self._embed(prev_tokens.unsqueeze(1), t), state, self_mask, cached=True)
        past_keys, past_values = (torch.stack(p, dim=1) for p in zip(*pasts))
        trace = self._trace(kept)
        context = merge_heads(kept[self.trace_layer].context)  # (B, 1, W)
        one = AttentionOutput(context, trace.weights, trace.probs, trace.log_prob, trace.entropy).squeeze(1)
        state = TransformerState(state.keys, state.values, state.mask, past_keys, past_values)
        return logits.squeeze(1), state, one


class Transformer(EncoderDecoder):
    """Translation: source tokens encoded by self-attention layers, a decoder reading them by cross-attention.

    Args:
        src_vocab: source vocabulary size (ids 0-3 are ``<pad> <s> </s> <unk>``).
        tgt_vocab: target vocabulary size (the same reserved ids).
        attention: the mechanism config (see :func:`lightning_attn.attention.build_attention`), ``where`` it goes.
        config: sizes, positions, dropout (:class:`TransformerConfig`, its defaults when omitted).
    """

    def __init__(self, src_vocab: int, tgt_vocab: int, attention: Any, config: TransformerConfig | None = None):
        super().__init__()
        c = config or TransformerConfig()
        _check(c)
        cross, own = mechanisms(attention, c.width // c.heads)
        self.encoder = TokenEncoder(src_vocab, c, own)
        self.decoder = Decoder(tgt_vocab, c, cross, own, config_fields(attention).get("where", "cross"))

    @property
    def memory_dim(self) -> int:
        return self.decoder.embed.embedding_dim

    def attention_parameters(self) -> list[nn.Parameter]:
        """What scores the mechanism's choice (:meth:`Decoder.scoring`)."""
        return self.decoder.scoring(self.encoder.layers)


class TokenEncoder(nn.Module):
    """``src (B, S), src_lengths (B,) -> memory (B, S, W)``: embeddings and positions, then :class:`Encoder`."""

    def __init__(self, vocab: int, c: TransformerConfig, mechanism: Attention):
        super().__init__()
        self.embed = embedding(vocab, c.width)
        self.positions = Positions(c.width, c.positions, c.max_positions)
        self.dropout = nn.Dropout(c.dropout)
        self.layers = Encoder(c, mechanism)

    def forward(self, src: Tensor, lengths: Tensor) -> Tensor:
        mask = torch.arange(src.size(1), device=src.device).unsqueeze(0) < lengths.to(src.device).unsqueeze(1)
        x = self.embed(src) * math.sqrt(self.embed.embedding_dim) + self.positions(0, src.size(1))
        return self.layers(self.dropout(x), mask)


class CaptionTransformer(ImageCaptioner):
    """Captioning: the grid encoder's regions, projected to ``W`` and (``encoder_layers``) contextualised by
    self-attention, read by a Transformer decoder.

    Args:
        vocab: caption vocabulary size.
        attention: the mechanism config, ``where`` it goes.
        in_channels: the images' channels.
        image_size: the images' height and width.
        config: the Transformer and its ``image`` encoder (:class:`TransformerConfig`).
    """

    def __init__(
        self, vocab: int, attention: Any, in_channels: int, image_size: int, config: TransformerConfig | None = None
    ):
        super().__init__()
        c = config or TransformerConfig()
        _check(c)
        image = c.image if isinstance(c.image, GridEncoderConfig) else GridEncoderConfig(**c.image)
        self.encoder = build_grid_encoder(image, in_channels, image_size)
        cross, own = mechanisms(attention, c.width // c.heads)
        self.project = nn.Linear(self.encoder.dim, c.width)
        self.regions = Encoder(c, own)
        self.decoder = Decoder(vocab, c, cross, own, config_fields(attention).get("where", "cross"))

    def attention_parameters(self) -> list[nn.Parameter]:
        """What scores the mechanism's choice (:meth:`Decoder.scoring`)."""
        return self.decoder.scoring(self.regions)

    def start(self, regions: Tensor) -> TransformerState:
        mask = torch.ones(regions.shape[:2], dtype=torch.bool, device=regions.device)
        return self.decoder.start(self.regions(self.project(regions), mask))
