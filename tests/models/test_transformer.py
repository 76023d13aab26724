"""The Transformer: incremental decoding equals recomputing every position, causality, padding, the places a
mechanism may take, and the mechanisms over many queries and heads equal to one query at a time."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from lightning_attn.attention import MECHANISMS, build_attention
from lightning_attn.config import ConfigError, compose
from lightning_attn.data.codec import BOS, PAD
from lightning_attn.models import CaptionTransformer, Transformer, TransformerConfig

SMALL = TransformerConfig(width=32, heads=4, ffn=64, encoder_layers=2, decoder_layers=2)
#: (mechanism, where) pairs a Transformer takes
PLACED = [
    (name, where)
    for name, (cls, _) in sorted(MECHANISMS.items())
    for where in ("cross", "self", "both")
    if not ({"cross", "self"} if where == "both" else {where}) & set(cls.unsupported)
]


def batch(seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    lengths = torch.tensor([9, 7, 5, 9, 3])
    src = torch.randint(4, 20, (5, 9), generator=g)
    src[torch.arange(9).unsqueeze(0) >= lengths.unsqueeze(1)] = PAD
    tgt = torch.randint(4, 22, (5, 8), generator=g)
    tgt[:, 0] = BOS
    return src, lengths, tgt


def model(mechanism: str, where: str, config: TransformerConfig = SMALL) -> Transformer:
    torch.manual_seed(0)
    return Transformer(20, 22, {"mechanism": mechanism, "where": where}, config).eval()


@pytest.mark.parametrize(("mechanism", "where"), PLACED)
def test_incremental_decoding_equals_recomputing_every_position(mechanism, where):
    m = model(mechanism, where)
    src, lengths, _ = batch()
    tokens, weights = m.greedy(src, lengths, 12)
    with torch.no_grad():
        prefix = torch.cat([torch.full((5, 1), BOS), tokens[:, :-1]], dim=1)
        full = m(src, lengths, prefix)
    # the step's logits equal the teacher-forced pass over the same prefix at every position, so the same argmax
    real = tokens != PAD
    assert (full.logits.argmax(-1)[real] == tokens[real]).all()
    torch.testing.assert_close(full.trace.weights[real], weights[real], rtol=1e-4, atol=1e-5)


def test_one_step_logits_equal_the_full_pass():
    m = model("soft", "cross")
    src, lengths, tgt = batch()
    with torch.no_grad():
        full = m(src, lengths, tgt).logits
        state, steps = m.encode(src, lengths), []
        for t in range(tgt.size(1)):
            logits, state, _ = m.decoder.step(tgt[:, t], state)
            steps.append(logits)
    torch.testing.assert_close(torch.stack(steps, dim=1), full, rtol=1e-4, atol=1e-5)
    assert state.past_keys.shape[3] == tgt.size(1)  # the cache holds every position decoded, once


def test_a_later_token_never_changes_an_earlier_prediction():
    m = model("topk", "both")
    src, lengths, tgt = batch()
    changed = tgt.clone()
    changed[:, 5:] = 4
    with torch.no_grad():
        a, b = m(src, lengths, tgt).logits, m(src, lengths, changed).logits
    torch.testing.assert_close(a[:, :5], b[:, :5])
    assert not torch.allclose(a[:, 5:], b[:, 5:])


@pytest.mark.parametrize("where", ["cross", "both"])
def test_appended_source_padding_changes_nothing(where):
    m = model("soft", where)
    src, lengths, tgt = batch()
    padded = torch.cat([src, torch.full((5, 4), PAD)], dim=1)
    with torch.no_grad():
        torch.testing.assert_close(m(src, lengths, tgt).logits, m(padded, lengths, tgt).logits)


def test_a_sliding_window_reads_only_the_positions_near_it():
    local = build_attention({"mechanism": "local", "window": 2}, 8, 8, place="self")
    positions = torch.arange(6)
    mask = local.self_attention_mask(torch.ones(6, 6, dtype=torch.bool).tril(), positions, positions)
    expected = torch.tensor([[0 <= q - k <= 2 for k in range(6)] for q in range(6)])
    assert torch.equal(mask, expected)
    assert not hasattr(local, "position")  # no predicted centre in self-attention: no unused parameter


@pytest.mark.parametrize(
    ("overrides", "says"),
    [
        (["attention=marginal"], "cannot be used in a Transformer's cross-attention: summing"),
        (["attention=hard", "attention.where=both"], "cannot be used in a Transformer's self-attention"),
        (["attention=gumbel", "attention.where=self"], "cannot be used in a Transformer's self-attention"),
    ],
)
def test_a_mechanism_a_place_cannot_take_is_refused_when_composed(overrides, says):
    with pytest.raises(ConfigError, match=says):
        compose(["model=transformer", *overrides])


def test_where_needs_a_transformer():
    with pytest.raises(ConfigError, match="attention.where=self needs model=transformer"):
        compose(["attention.where=self"])


@pytest.mark.parametrize("mechanism", sorted(MECHANISMS))
def test_many_queries_and_heads_equal_one_query_at_a_time(mechanism):
    """``read`` over ``(B, H, T, D)`` queries gives, query by query, what a recurrent decoder's single query gets."""
    torch.manual_seed(0)
    attention = build_attention({"mechanism": mechanism} | ({} if mechanism == "uniform" else {"score": "dot"}), 8, 8)
    attention.eval()
    b, h, t, n = 3, 2, 4, 7
    query, keys = torch.randn(b, h, t, 8), torch.randn(b, h, n, 8)
    lengths = torch.tensor([7, 5, 2])
    mask = torch.arange(n).unsqueeze(0) < lengths.unsqueeze(1)  # (B, N)
    many = attention.attend(query, keys, keys, mask[:, None, None, :])
    for i in range(h):
        for j in range(t):
            one = attention.attend(query[:, i, j], keys[:, i], keys[:, i], mask)
            torch.testing.assert_close(many.context[:, i, j], one.context, rtol=1e-5, atol=1e-6)
            torch.testing.assert_close(many.weights[:, i, j], one.weights, rtol=1e-5, atol=1e-6)


def test_stochastic_cross_attention_samples_per_head_and_sums_the_choices():
    torch.manual_seed(0)
    m = Transformer(20, 22, {"mechanism": "hard", "semi_sampling_p": 0.0}, SMALL).train()
    src, lengths, tgt = batch()
    out = m(src, lengths, tgt)
    # every head of every layer sampled one position per query; the trace's log-probability is their sum
    assert out.trace.log_prob.shape == tgt.shape and (out.trace.log_prob < 0).all()
    nll = F.cross_entropy(out.logits.transpose(1, 2), tgt, reduction="none")
    terms = m.attention.training_terms(out.trace, -nll, torch.ones_like(tgt, dtype=torch.bool))
    terms.losses["reinforce_loss"].backward()
    assert m.decoder.layers[0].cross_attention.query.weight.grad.abs().sum() > 0  # the estimator reaches every layer


def test_captioning_transformer_reads_the_regions():
    torch.manual_seed(0)
    config = TransformerConfig(width=32, heads=4, ffn=64, encoder_layers=1, image={"channels": [8, 16]})
    m = CaptionTransformer(22, {"mechanism": "soft"}, 3, 16, config).eval()
    images = torch.randn(2, 3, 16, 16)
    tokens, weights = m.greedy(images, 6)
    assert weights.shape == (2, tokens.size(1), m.grid * m.grid)
    torch.testing.assert_close(weights.sum(-1), torch.ones(weights.shape[:2]))
    assert m.beam_search(images, 6, 2, 1.0).shape[0] == 2
