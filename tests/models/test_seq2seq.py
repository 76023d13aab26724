from __future__ import annotations

import pytest
import torch

from lightning_attn.attention import MECHANISMS
from lightning_attn.data.codec import EOS, PAD
from lightning_attn.models import Seq2Seq
from lightning_attn.models.seq2seq import Seq2SeqConfig

V_SRC, V_TGT = 30, 25


def model(mechanism: str = "soft", **kw) -> Seq2Seq:
    torch.manual_seed(0)
    sizes = Seq2SeqConfig(embed_dim=8, encoder_hidden=8, decoder_hidden=16, dropout=0.0, **kw)
    return Seq2Seq(V_SRC, V_TGT, {"mechanism": mechanism}, sizes)


def batch(extra_pad: int = 0):
    g = torch.Generator().manual_seed(0)
    src = torch.randint(4, V_SRC, (3, 6), generator=g)
    lengths = torch.tensor([6, 4, 2])
    src[1, 4:] = PAD
    src[2, 2:] = PAD
    src = torch.cat([src, torch.full((3, extra_pad), PAD)], 1)
    tgt = torch.randint(4, V_TGT, (3, 5), generator=g)
    tgt[:, 0] = 1
    return src, lengths, tgt


@pytest.mark.parametrize("mechanism", sorted(MECHANISMS))
def test_teacher_forcing_shapes(mechanism):
    src, lengths, tgt = batch()
    out = model(mechanism)(src, lengths, tgt)
    assert out.logits.shape == (3, 5, V_TGT)
    assert out.trace.weights.shape == (3, 5, 6)
    # attention never lands on padding
    assert (out.trace.weights[1, :, 4:] == 0).all() and (out.trace.weights[2, :, 2:] == 0).all()


@pytest.mark.parametrize("mechanism", sorted(MECHANISMS))
@pytest.mark.parametrize("training", [False, True])
def test_appending_source_padding_changes_no_output(mechanism, training):
    m = model(mechanism).train(training)
    src, lengths, tgt = batch()
    longer, _, _ = batch(extra_pad=4)
    torch.manual_seed(3)
    a = m(src, lengths, tgt)
    torch.manual_seed(3)
    b = m(longer, lengths, tgt)
    torch.testing.assert_close(a.logits, b.logits)
    torch.testing.assert_close(a.trace.weights, b.trace.weights[..., :6])


def test_hard_training_reports_log_probs_and_entropy():
    out = model("hard").train()(*batch())
    assert out.trace.log_prob.shape == (3, 5) and out.trace.entropy.shape == (3, 5)
    assert model("soft")(*batch()).trace.log_prob is None


def test_greedy_stops_at_the_length_limit_and_pads_after_eos():
    m = model().eval()
    src, lengths, _ = batch()
    tokens, attention = m.greedy(src, lengths, max_len=7)
    assert tokens.shape[1] <= 7 and attention.shape[:2] == tokens.shape
    for row in tokens.tolist():
        if EOS in row:
            assert all(t == PAD for t in row[row.index(EOS) + 1 :])


@torch.no_grad()
def sequence_log_prob(m: Seq2Seq, src, lengths, tokens: list[int]) -> float:
    """log p(tokens | src) for one sentence, by teacher forcing."""
    tokens = tokens[: tokens.index(EOS) + 1] if EOS in tokens else tokens
    tgt_in = torch.tensor([[1, *tokens[:-1]]])
    logits = m(src, lengths, tgt_in).logits.log_softmax(-1)
    return float(logits[0, torch.arange(len(tokens)), torch.tensor(tokens)].sum())


def test_beam_of_one_is_greedy():
    m = model().eval()
    src, lengths, _ = batch()
    greedy, _ = m.greedy(src, lengths, max_len=8)
    beam = m.beam_search(src, lengths, max_len=8, beam_size=1, length_penalty=0.0)
    for g, b in zip(greedy.tolist(), beam.tolist()):
        assert [t for t in g if t != PAD] == [t for t in b if t != PAD]


def test_a_beam_as_wide_as_the_vocabulary_finds_the_most_likely_translation():
    """Two steps with a beam of V hypotheses keep every one-word prefix: the best of all sequences of at most
    two words must come out (checked against every such sequence, scored by teacher forcing)."""
    m = model().eval()
    src, lengths, _ = batch()
    beam = m.beam_search(src, lengths, max_len=2, beam_size=V_TGT, length_penalty=0.0)
    for i in range(3):
        one = (src[i : i + 1, : lengths[i]], lengths[i : i + 1])
        candidates = [[EOS]] + [[a, b] for a in range(V_TGT) if a not in (PAD, EOS) for b in range(V_TGT) if b != PAD]
        best = max(sequence_log_prob(m, *one, c) for c in candidates)
        found = sequence_log_prob(m, *one, [t for t in beam[i].tolist() if t != PAD])
        assert found == pytest.approx(best, abs=1e-4)


def test_beam_search_is_batch_independent():
    m = model().eval()
    src, lengths, _ = batch()
    together = m.beam_search(src, lengths, max_len=8, beam_size=3, length_penalty=1.0)
    alone = m.beam_search(src[1:2, :4], lengths[1:2], max_len=8, beam_size=3, length_penalty=1.0)
    width = alone.size(1)
    assert together[1, :width].tolist() == alone[0].tolist()


def test_dot_attention_needs_matching_sizes():
    with pytest.raises(ValueError, match="dot attention"):
        Seq2Seq(V_SRC, V_TGT, {"mechanism": "soft", "score": "dot"}, Seq2SeqConfig(encoder_hidden=8, decoder_hidden=10))
    Seq2Seq(V_SRC, V_TGT, {"mechanism": "soft", "score": "dot"}, Seq2SeqConfig(encoder_hidden=8, decoder_hidden=16))
