"""Attention sequence-to-sequence model: bidirectional GRU encoder, GRU decoder, pluggable attention.

Decoder step t (Luong et al., 2015, with input feeding; the attention mechanism swapped in)::

    1. update the state:                 h_t = GRUCell([emb(y_{t-1}); c_{t-1}], h_{t-1})
    2. attend with the new state:        c_t = Attention(h_t, memory)
    3. predict the next token:           p(y_t) = softmax(W_o tanh(W_h [h_t; emb(y_{t-1}); c_t]))

Attending *after* the update lets the query know the word just emitted, which is what tells a
reordering decoder where to look next (the Bahdanau order, attending with h_{t-1}, learnt the
built-in corpus' long-distance verb move several epochs later). Feeding c_{t-1} back tells the
state where it looked last.

Shapes: ``B`` batch, ``S`` source length, ``T`` target length, ``H`` decoder hidden, ``M = 2 x``
encoder hidden (the memory the decoder attends over), ``V`` target vocabulary.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from ..attention import Attention, AttentionOutput, build_attention
from ..data.codec import PAD
from .decoding import BatchState, DecoderOutput, beam_search, greedy, teacher_forcing


@dataclass
class Seq2SeqConfig:
    """Bidirectional GRU encoder, attention GRU decoder."""

    kind: str = "seq2seq"
    embed_dim: int = 64
    encoder_hidden: int = 64  # per direction; the decoder attends over 2 x this
    decoder_hidden: int = 128  # = 2 x encoder_hidden, so attention.score=dot works out of the box
    dropout: float = 0.1


@dataclass
class DecoderState(BatchState):
    hidden: Tensor  # (B, H)
    context: Tensor  # (B, M) the previous step's attention context
    memory: Tensor  # (B, S, M) encoder states (the attention values)
    keys: Tensor  # (B, S, *) the attention's prepared keys
    mask: Tensor  # (B, S) bool, True at real source tokens


class Encoder(nn.Module):
    """Embedding + bidirectional GRU. ``(B, S) -> memory (B, S, 2E)``; padding rows are 0."""

    def __init__(self, vocab_size: int, embed_dim: int, hidden: int, dropout: float):
        super().__init__()
        self.embed = nn.Embedding(vocab_size, embed_dim, padding_idx=PAD)
        self.rnn = nn.GRU(embed_dim, hidden, batch_first=True, bidirectional=True)
        self.dropout = nn.Dropout(dropout)

    def forward(self, src: Tensor, lengths: Tensor) -> Tensor:
        emb = self.dropout(self.embed(src))
        # packing makes the backward direction start at each sentence's last real token,
        # so appended padding cannot change any state
        packed = pack_padded_sequence(emb, lengths.cpu(), batch_first=True, enforce_sorted=False)
        out, _ = self.rnn(packed)
        out, _ = pad_packed_sequence(out, batch_first=True, total_length=src.size(1))
        return self.dropout(out)


class AttentionDecoder(nn.Module):
    """GRU decoder that reads the source through an :class:`Attention` mechanism."""

    def __init__(
        self, vocab_size: int, embed_dim: int, hidden: int, *, memory_dim: int, attention: Attention, dropout: float
    ):
        super().__init__()
        self.embed = nn.Embedding(vocab_size, embed_dim, padding_idx=PAD)
        self.attention = attention
        self.init_state = nn.Linear(memory_dim, hidden)
        self.cell = nn.GRUCell(embed_dim + memory_dim, hidden)
        self.pre_output = nn.Linear(hidden + embed_dim + memory_dim, hidden)
        self.output = nn.Linear(hidden, vocab_size)
        self.dropout = nn.Dropout(dropout)

    def start(self, memory: Tensor, mask: Tensor) -> DecoderState:
        """Initial state and context from the mean of the real encoder states (as in Show, Attend and Tell)."""
        weights = mask.to(memory.dtype)
        mean = (memory * weights.unsqueeze(-1)).sum(1) / weights.sum(1, keepdim=True)
        return DecoderState(torch.tanh(self.init_state(mean)), mean, memory, self.attention.prepare(memory), mask)

    def step(self, prev_tokens: Tensor, state: DecoderState) -> tuple[Tensor, DecoderState, AttentionOutput]:
        """One step. ``prev_tokens (B,) -> logits (B, V)``."""
        emb = self.dropout(self.embed(prev_tokens))
        # 1. update the state with the previous token and the previous context
        hidden = self.cell(torch.cat([emb, state.context], dim=-1), state.hidden)
        # 2. attend with the new state
        att = self.attention.attend(hidden, state.keys, state.memory, state.mask)
        # 3. deep output: state, context and previous token predict the next token — read as the
        # mechanism reads (the context by default; marginal attention mixes every position's prediction)

        def predict(context: Tensor) -> Tensor:
            """Contexts ``(B, …, M)`` -> logits ``(B, …, V)``."""
            extra = context.shape[1:-1]
            fixed = torch.cat([hidden, emb], dim=-1).view(hidden.size(0), *(1,) * len(extra), -1)
            joined = torch.cat([fixed.expand(*context.shape[:-1], -1), context], dim=-1)
            return self.output(self.dropout(torch.tanh(self.pre_output(joined))))

        logits = self.attention.readout(att, state.memory, predict)
        return logits, DecoderState(hidden, att.context, state.memory, state.keys, state.mask), att

    def teacher_forced(self, state: DecoderState, tgt_in: Tensor) -> DecoderOutput:
        """Every step over the gold previous tokens ``tgt_in (B, T)``."""
        return teacher_forcing(self.step, state, tgt_in)


class EncoderDecoder(nn.Module):
    """A translation model as the task uses it: sources encoded to a memory ``(B, S, M)`` by ``self.encoder``
    (``src (B, S), src_lengths (B,) -> memory``), read by ``self.decoder`` (``start(memory, mask)``, ``step``,
    ``teacher_forced``, ``attention``): training, greedy and beam-search decoding. A subclass builds the two."""

    encoder: nn.Module
    decoder: nn.Module

    @property
    def attention(self) -> Attention:
        return self.decoder.attention

    @property
    def memory_dim(self) -> int:
        """``M``: the size of each encoder state the decoder attends over."""
        raise NotImplementedError

    def start(self, memory: Tensor) -> DecoderState:
        """The decoder's first state over given encoder states ``(B, S, M)``, every position real (what the
        speed pass measures a decoder step on, at any source length)."""
        return self.decoder.start(memory, torch.ones(memory.shape[:2], dtype=torch.bool, device=memory.device))

    def encode(self, src: Tensor, src_lengths: Tensor) -> DecoderState:
        """``(B, S), (B,) -> initial decoder state``."""
        mask = torch.arange(src.size(1), device=src.device).unsqueeze(0) < src_lengths.unsqueeze(1)
        return self.decoder.start(self.encoder(src, src_lengths), mask)

    def forward(self, src: Tensor, src_lengths: Tensor, tgt_in: Tensor) -> DecoderOutput:
        """Teacher forcing. ``src (B, S), src_lengths (B,), tgt_in (B, T)`` starting with ``<s>``."""
        return self.decoder.teacher_forced(self.encode(src, src_lengths), tgt_in)

    @torch.no_grad()
    def greedy(self, src: Tensor, src_lengths: Tensor, max_len: int) -> tuple[Tensor, Tensor]:
        """Most likely token at each step: tokens ``(B, L)`` and attention ``(B, L, S)``."""
        state = self.encode(src, src_lengths)
        return greedy(self.decoder.step, state, src.size(0), max_len, src.device)

    @torch.no_grad()
    def beam_search(
        self, src: Tensor, src_lengths: Tensor, max_len: int, beam_size: int, length_penalty: float
    ) -> Tensor:
        """Batched beam search (see :mod:`lightning_attn.models.decoding`): tokens ``(B, L)``."""
        state = self.encode(src, src_lengths)
        return beam_search(
            self.decoder.step,
            state,
            src.size(0),
            max_len=max_len,
            beam_size=beam_size,
            length_penalty=length_penalty,
            device=src.device,
        )


class Seq2Seq(EncoderDecoder):
    """Encoder-decoder with attention: a bidirectional GRU encoder, an attention GRU decoder.

    Args:
        src_vocab: source vocabulary size (ids 0-3 are ``<pad> <s> </s> <unk>``).
        tgt_vocab: target vocabulary size (the same reserved ids).
        attention: the mechanism config (see :func:`lightning_attn.attention.build_attention`).
        config: sizes and dropout (:class:`Seq2SeqConfig`, its defaults when omitted).
    """

    def __init__(self, src_vocab: int, tgt_vocab: int, attention: Any, config: Seq2SeqConfig | None = None):
        super().__init__()
        c = config or Seq2SeqConfig()
        memory_dim = 2 * c.encoder_hidden
        self.encoder = Encoder(src_vocab, c.embed_dim, c.encoder_hidden, c.dropout)
        mechanism = build_attention(attention, query_dim=c.decoder_hidden, key_dim=memory_dim)
        self.decoder = AttentionDecoder(
            tgt_vocab, c.embed_dim, c.decoder_hidden, memory_dim=memory_dim, attention=mechanism, dropout=c.dropout
        )

    @property
    def memory_dim(self) -> int:
        return self.decoder.init_state.in_features
