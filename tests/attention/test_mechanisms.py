"""Per-feature tests of the attention mechanisms (x-transformers style: small and many)."""

from __future__ import annotations

import pytest
import torch

from lightning_attn.attention import (
    MECHANISMS,
    HardAttention,
    HardAttentionConfig,
    SoftAttention,
    SoftAttentionConfig,
    UniformAttention,
    build_attention,
)
from lightning_attn.attention.hard import sample_positions

B, N, DQ, DK = 4, 7, 8, 8
SCORES = ["additive", "dot", "general"]


def inputs(seed: int = 0, n: int = N):
    g = torch.Generator().manual_seed(seed)
    query = torch.randn(B, DQ, generator=g)
    keys = torch.randn(B, n, DK, generator=g)
    lengths = torch.tensor([n, n - 2, 3, 1])
    mask = torch.arange(n).unsqueeze(0) < lengths.unsqueeze(1)
    return query, keys, mask


def pad(keys, mask, extra: int):
    """Append ``extra`` padded positions filled with junk (padding must never matter)."""
    junk = torch.full((keys.size(0), extra, keys.size(2)), 123.0)
    return torch.cat([keys, junk], 1), torch.cat([mask, torch.zeros(mask.size(0), extra, dtype=torch.bool)], 1)


@pytest.mark.parametrize("score", SCORES)
def test_soft_weights_sum_to_one_over_real_positions(score):
    query, keys, mask = inputs()
    out = SoftAttention(DQ, DK, SoftAttentionConfig(score=score, hidden_dim=16))(query, keys, keys, mask)
    torch.testing.assert_close(out.weights.sum(-1), torch.ones(B))
    assert (out.weights[~mask] == 0).all()
    assert out.context.shape == (B, DK)


@pytest.mark.parametrize("score", SCORES)
def test_soft_context_is_the_weighted_mean(score):
    query, keys, mask = inputs()
    out = SoftAttention(DQ, DK, SoftAttentionConfig(score=score, hidden_dim=16))(query, keys, keys, mask)
    torch.testing.assert_close(out.context, (out.weights.unsqueeze(-1) * keys).sum(1))


def test_dot_rejects_mismatched_sizes():
    with pytest.raises(ValueError, match="general or additive"):
        SoftAttention(4, 6, SoftAttentionConfig(score="dot"))


def test_general_handles_mismatched_sizes():
    out = SoftAttention(4, 6, SoftAttentionConfig(score="general"))(
        torch.randn(2, 4), torch.randn(2, 3, 6), torch.randn(2, 3, 6)
    )
    assert out.context.shape == (2, 6)


def test_uniform_is_the_mean_of_real_positions_and_its_entropy_is_log_n():
    query, keys, mask = inputs()
    out = UniformAttention()(query, keys, keys, mask)
    lengths = mask.sum(1)
    expected = torch.stack([keys[i, : lengths[i]].mean(0) for i in range(B)])
    torch.testing.assert_close(out.context, expected)
    torch.testing.assert_close(out.entropy, torch.log(lengths.float()))


def test_uniform_ignores_the_query():
    _, keys, mask = inputs()
    a = UniformAttention()(torch.randn(B, DQ), keys, keys, mask)
    b = UniformAttention()(torch.randn(B, DQ), keys, keys, mask)
    torch.testing.assert_close(a.context, b.context)


def test_hard_samples_only_unmasked_positions():
    torch.manual_seed(0)
    query, keys, mask = inputs()
    attention = HardAttention(DQ, DK, HardAttentionConfig(semi_sampling_p=0.0)).train()
    for _ in range(200):
        out = attention(query, keys, keys, mask)
        chosen = out.weights.argmax(-1)
        assert mask[torch.arange(B), chosen].all()
        assert out.extras["sampled"].all()
        # the context is exactly the chosen value, not a mixture
        torch.testing.assert_close(out.context, keys[torch.arange(B), chosen])


def test_sampler_never_picks_zero_probability_positions():
    torch.manual_seed(0)
    probs = torch.tensor([[0.0, 0.5, 0.0, 0.5, 0.0]]).repeat(1000, 1)
    picks = sample_positions(probs)
    assert set(picks.tolist()) == {1, 3}
    assert 400 < (picks == 1).sum() < 600


def test_sampler_follows_the_distribution():
    torch.manual_seed(0)
    probs = torch.tensor([[0.1, 0.6, 0.3]]).repeat(20000, 1)
    freq = torch.bincount(sample_positions(probs), minlength=3).float() / 20000
    torch.testing.assert_close(freq, probs[0], atol=0.02, rtol=0)


def test_hard_eval_is_deterministic_argmax():
    query, keys, mask = inputs()
    attention = HardAttention(DQ, DK).eval()
    first, second = attention(query, keys, keys, mask), attention(query, keys, keys, mask)
    torch.testing.assert_close(first.context, second.context)
    index = attention.distribution(query, attention.prepare(keys), mask).argmax(-1)  # the most likely under α
    torch.testing.assert_close(first.context, keys[torch.arange(B), index])
    torch.testing.assert_close(first.probs, first.weights)  # at evaluation the policy is the one-hot choice
    assert (first.weights.sum(-1) == 1).all() and (first.weights.max(-1).values == 1).all()


def test_hard_eval_uses_a_gather_not_a_matmul(monkeypatch):
    query, keys, mask = inputs()
    attention = HardAttention(DQ, DK).eval()

    def no_bmm(*args, **kwargs):
        raise AssertionError("hard attention at evaluation must not build the context with a matmul")

    monkeypatch.setattr(torch, "bmm", no_bmm)
    attention.scorer = SoftAttention(
        DQ, DK, SoftAttentionConfig(score="additive")
    ).scorer  # additive scorer uses no bmm
    attention(query, keys, keys, mask)


def test_semi_sampling_mixes_soft_and_sampled_rows():
    torch.manual_seed(0)
    query, keys, mask = inputs()
    attention = HardAttention(DQ, DK, HardAttentionConfig(semi_sampling_p=0.5)).train()
    sampled = torch.cat([attention(query, keys, keys, mask).extras["sampled"] for _ in range(400)]).float()
    assert 0.4 < sampled.mean() < 0.6
    out = attention(query, keys, keys, mask)
    soft_rows = ~out.extras["sampled"]
    torch.testing.assert_close(out.weights[soft_rows], out.probs[soft_rows])
    assert (out.log_prob[soft_rows] == 0).all()


def test_semi_sampling_one_is_soft_attention():
    query, keys, mask = inputs()
    hard = HardAttention(DQ, DK, HardAttentionConfig(semi_sampling_p=1.0)).train()
    soft = SoftAttention(DQ, DK)
    soft.load_state_dict({k: v for k, v in hard.state_dict().items() if k.startswith("scorer")})
    torch.testing.assert_close(hard(query, keys, keys, mask).context, soft(query, keys, keys, mask).context)


def test_reinforce_gives_the_scorer_gradients_and_moves_the_baseline():
    torch.manual_seed(0)
    query, keys, mask = inputs()
    attention = HardAttention(DQ, DK, HardAttentionConfig(semi_sampling_p=0.0, entropy_weight=0.0)).train()
    out = attention(query, keys, keys, mask)
    reward = torch.tensor([-1.0, -2.0, -3.0, -4.0])
    attention.reinforce_loss(reward.unsqueeze(1), out.log_prob.unsqueeze(1), out.entropy.unsqueeze(1), mask[:, :1])
    # the first batch starts the baseline at its mean reward
    assert attention.baseline.item() == pytest.approx(-2.5)
    out = attention(query, keys, keys, mask)
    terms = attention.reinforce_loss(
        (reward - 10).unsqueeze(1), out.log_prob.unsqueeze(1), out.entropy.unsqueeze(1), mask[:, :1]
    )
    terms.loss.backward()
    assert attention.baseline.item() == pytest.approx(0.9 * -2.5 + 0.1 * -12.5)
    grads = [p.grad for p in attention.scorer.parameters()]
    assert all(g is not None for g in grads) and any(g.abs().sum() > 0 for g in grads)


def test_reinforce_pushes_up_selections_with_above_baseline_reward():
    """A small gradient step makes a selection with positive advantage more likely (one sentence)."""
    torch.manual_seed(0)
    query, keys, mask = (x[:1] for x in inputs())
    attention = HardAttention(DQ, DK, HardAttentionConfig(semi_sampling_p=0.0, entropy_weight=0.0)).train()
    attention.baseline_started.fill_(True)  # baseline 0, reward 1: advantage +1
    out = attention(query, keys, keys, mask)
    chosen = out.weights.argmax(-1)
    terms = attention.reinforce_loss(torch.ones(1, 1), out.log_prob.unsqueeze(1), out.entropy.unsqueeze(1), mask[:, :1])
    terms.loss.backward()
    with torch.no_grad():
        for p in attention.parameters():
            p -= 0.05 * p.grad
    after = attention.distribution(query, attention.prepare(keys), mask).exp()[0, chosen]
    assert after > out.probs[0, chosen].detach()


def test_entropy_bonus_flattens_the_distribution():
    query, keys, mask = inputs()
    attention = HardAttention(DQ, DK, HardAttentionConfig(semi_sampling_p=0.0, entropy_weight=1.0)).train()
    attention.baseline_started.fill_(True)
    out = attention(query, keys, keys, mask)
    terms = attention.reinforce_loss(
        attention.baseline.expand(B, 1), out.log_prob.unsqueeze(1) * 0, out.entropy.unsqueeze(1), mask[:, :1]
    )
    terms.loss.backward()
    with torch.no_grad():
        for p in attention.parameters():
            p -= 0.5 * p.grad
    assert attention(query, keys, keys, mask).entropy.sum() > out.entropy.sum()


def test_reward_is_the_mean_or_the_sum_of_token_log_likelihoods():
    token_log_lik = torch.tensor([[-1.0, -3.0, 0.0], [-2.0, 0.0, 0.0]])
    step_mask = torch.tensor([[True, True, False], [True, False, False]])
    zeros = torch.zeros(2, 3)
    for per_token, expected in ((True, [-2.0, -2.0]), (False, [-4.0, -2.0])):
        attention = HardAttention(DQ, DK, HardAttentionConfig(reward_per_token=per_token)).train()
        attention.reinforce_loss(token_log_lik, zeros, zeros, step_mask)
        assert attention.baseline.item() == pytest.approx(sum(expected) / 2)


@pytest.mark.parametrize(
    ("credit", "per_token", "expected"),
    [
        ("sentence", True, [[-2.0, -2.0, -2.0], [-2.0, -2.0, -2.0]]),
        ("sentence", False, [[-4.0, -4.0, -4.0], [-2.0, -2.0, -2.0]]),
        ("to_go", True, [[-2.0, -3.0, 0.0], [-2.0, 0.0, 0.0]]),
        ("to_go", False, [[-4.0, -3.0, 0.0], [-2.0, 0.0, 0.0]]),
        ("step", True, [[-1.0, -3.0, 0.0], [-2.0, 0.0, 0.0]]),
    ],
)
def test_each_step_is_credited_with_the_sentence_the_tokens_to_go_or_its_own_token(credit, per_token, expected):
    token_log_lik = torch.tensor([[-1.0, -3.0, 0.0], [-2.0, 0.0, 0.0]])
    step_mask = torch.tensor([[True, True, False], [True, False, False]])
    attention = HardAttention(DQ, DK, HardAttentionConfig(credit=credit, reward_per_token=per_token))
    reward, _ = attention.step_rewards(token_log_lik, step_mask)
    torch.testing.assert_close(reward * step_mask, torch.tensor(expected) * step_mask)


def test_step_credit_baseline_tracks_the_mean_token_reward_and_weights_each_choice_by_its_own_token():
    token_log_lik = torch.tensor([[-1.0, -3.0, 0.0], [-2.0, 0.0, 0.0]])
    step_mask = torch.tensor([[True, True, False], [True, False, False]])
    log_prob = torch.zeros(2, 3, requires_grad=True)
    attention = HardAttention(DQ, DK, HardAttentionConfig(credit="step", entropy_weight=0.0)).train()
    attention.reinforce_loss(token_log_lik, log_prob, torch.zeros(2, 3), step_mask).loss.backward()
    assert attention.baseline.item() == pytest.approx(-2.0)  # mean over the three real steps
    # d loss / d log p(z_t) = -(r_t - b) / n_steps, and nothing at padding
    torch.testing.assert_close(log_prob.grad, torch.tensor([[-1.0, 1.0, 0.0], [0.0, 0.0, 0.0]]) / 3)


def test_an_unknown_credit_is_refused_with_the_valid_ones():
    with pytest.raises(ValueError, match="sentence, to_go, step"):
        HardAttention(DQ, DK, HardAttentionConfig(credit="episode"))


def test_hard_reads_one_position_at_evaluation_by_default():
    query, keys, mask = inputs()
    attention = HardAttention(DQ, DK).eval()
    out = attention(query, keys, keys, mask)
    assert attention.traits()["selects_one"]
    assert ((out.weights == 0) | (out.weights == 1)).all() and (out.weights.sum(-1) == 1).all()
    assert (out.weights[~mask] == 0).all()


def test_hard_expectation_read_is_soft_attention_with_the_same_scorer_and_reads_every_position():
    # arctic-captions decodes its hard models with the expected context unless asked to sample
    query, keys, mask = inputs()
    hard = HardAttention(DQ, DK, HardAttentionConfig(eval_read="expectation")).eval()
    soft = SoftAttention(DQ, DK).eval()
    soft.load_state_dict(hard.state_dict(), strict=False)  # the scorer's weights; hard adds its baseline
    out, expected = hard(query, keys, keys, mask), soft(query, keys, keys, mask)
    torch.testing.assert_close(out.context, expected.context)
    assert (out.weights[mask] > 0).all() and (out.weights[~mask] == 0).all()
    assert not hard.traits()["selects_one"]
    # training is unchanged: still one sampled position on the rows that sample
    torch.manual_seed(0)
    trained = hard.train()(query, keys, keys, mask)
    sampled = trained.extras["sampled"]
    assert sampled.any() and (trained.weights[sampled].max(-1).values == 1).all()


def test_an_unknown_eval_read_is_refused_with_the_valid_ones():
    with pytest.raises(ValueError, match="argmax, expectation"):
        HardAttention(DQ, DK, HardAttentionConfig(eval_read="sample"))


def test_reinforce_loss_is_finite_with_padding_steps():
    query, keys, mask = inputs()
    attention = HardAttention(DQ, DK).train()
    out = attention(query, keys, keys, mask)
    step_mask = torch.tensor([[True, False]] * B)
    terms = attention.reinforce_loss(
        torch.zeros(B, 2), out.log_prob.unsqueeze(1).repeat(1, 2), out.entropy.unsqueeze(1).repeat(1, 2), step_mask
    )
    terms.loss.backward()
    assert torch.isfinite(terms.loss)
    assert all(torch.isfinite(p.grad).all() for p in attention.parameters())


@pytest.mark.parametrize("name", sorted(MECHANISMS))
@pytest.mark.parametrize("training", [False, True])
def test_appending_padding_changes_nothing(name, training):
    query, keys, mask = inputs()
    attention = build_attention({"mechanism": name}, DQ, DK).train(training)
    longer_keys, longer_mask = pad(keys, mask, extra=5)
    torch.manual_seed(1)
    short = attention(query, keys, keys, mask)
    torch.manual_seed(1)
    long = attention(query, longer_keys, longer_keys, longer_mask)
    torch.testing.assert_close(long.context, short.context)
    torch.testing.assert_close(long.weights[:, :N], short.weights)
    assert (long.weights[:, N:] == 0).all()


@pytest.mark.parametrize("name", sorted(MECHANISMS))
def test_gradients_are_finite_with_padding(name):
    query, keys, mask = inputs()
    keys = keys.requires_grad_()
    attention = build_attention({"mechanism": name}, DQ, DK).train()
    out = attention(query, keys, keys, mask)
    (out.context.sum() + out.entropy.sum()).backward()
    assert torch.isfinite(keys.grad).all()
    assert (keys.grad[~mask] == 0).all()


def test_registry_names_match_config_defaults():
    for name, (cls, config) in MECHANISMS.items():
        assert config().mechanism == name
        assert isinstance(build_attention(config(), DQ, DK), cls)


def test_unknown_mechanism_names_the_valid_ones():
    with pytest.raises(ValueError, match="hard, local, marginal, soft, sparsemax, topk, uniform"):
        build_attention({"mechanism": "nope"}, DQ, DK)


def test_prepare_then_attend_equals_forward():
    query, keys, mask = inputs()
    attention = SoftAttention(DQ, DK)
    torch.testing.assert_close(
        attention.attend(query, attention.prepare(keys), keys, mask).context, attention(query, keys, keys, mask).context
    )
