"""The mechanisms between hard and soft, each on its defining property, and every mechanism on the contract
all share (registry-driven: a new mechanism is checked without this file naming it)."""

from __future__ import annotations

import pytest
import torch

from lightning_attn.attention import MECHANISMS, build_attention
from lightning_attn.attention.base import TrainingTerms
from lightning_attn.attention.local import LocalAttention, LocalAttentionConfig

B, N, DQ, DK = 4, 7, 6, 6


def inputs(seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    query, keys = torch.randn(B, DQ, generator=g), torch.randn(B, N, DK, generator=g)
    mask = torch.ones(B, N, dtype=torch.bool)
    mask[1, 5:] = False
    mask[2, 2:] = False
    return query, keys, mask


ATTENDING = [name for name, (cls, _) in sorted(MECHANISMS.items()) if not cls.control]


@pytest.mark.parametrize("name", sorted(MECHANISMS))
def test_weights_are_a_distribution_over_real_positions(name):
    query, keys, mask = inputs()
    attention = build_attention({"mechanism": name}, DQ, DK)
    for training in (True, False):
        out = attention.train(training)(query, keys, keys, mask)
        assert out.context.shape == (B, DK) and out.weights.shape == (B, N)
        assert (out.weights[~mask] == 0).all()  # padding never weighted
        torch.testing.assert_close(out.weights.sum(-1), torch.ones(B))


@pytest.mark.parametrize("name", ATTENDING)
def test_gradients_reach_the_scorer(name):
    query, keys, mask = inputs()
    attention = build_attention({"mechanism": name}, DQ, DK).train()
    torch.manual_seed(0)
    out = attention(query, keys, keys, mask)
    loss = (out.context * torch.randn_like(out.context)).sum()
    if out.log_prob is not None:  # a sampled choice learns from its own estimator
        trace_like = type("Trace", (), {"log_prob": out.log_prob[:, None], "entropy": out.entropy[:, None]})
        terms = attention.training_terms(trace_like, torch.randn(B, 1), torch.ones(B, 1, dtype=torch.bool))
        loss = loss + sum(terms.losses.values())
    loss.backward()
    scorer = attention.scorer
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in scorer.parameters())


@pytest.mark.parametrize("name", sorted(MECHANISMS))
def test_evaluation_is_deterministic(name):
    query, keys, mask = inputs()
    attention = build_attention({"mechanism": name}, DQ, DK).eval()
    a, b = attention(query, keys, keys, mask), attention(query, keys, keys, mask)
    torch.testing.assert_close(a.context, b.context)
    torch.testing.assert_close(a.weights, b.weights)


@pytest.mark.parametrize("name", sorted(MECHANISMS))
def test_training_terms_are_the_declared_ones(name):
    """Whatever a mechanism adds to training, it says beforehand (training_metrics) what it reports."""
    cls, _ = MECHANISMS[name]
    attention = build_attention({"mechanism": name}, DQ, DK).train()
    query, keys, mask = inputs()
    steps = [attention(query, keys, keys, mask) for _ in range(3)]
    from lightning_attn.attention import AttentionTrace

    terms = attention.training_terms(AttentionTrace.stack(steps), torch.randn(B, 3), torch.ones(B, 3, dtype=bool))
    assert isinstance(terms, TrainingTerms) and set(terms.metrics) == set(cls.training_metrics)
    assert all(torch.isfinite(v).all() for v in [*terms.losses.values(), *terms.metrics.values()])


# ─── gumbel ────────────────────────────────────────────────────────────────────────────────────
def test_gumbel_forward_is_one_hot_and_its_backward_is_not_zero():
    query, keys, mask = inputs()
    attention = build_attention({"mechanism": "gumbel"}, DQ, DK).train()
    out = attention(query, keys, keys, mask)
    assert ((out.weights == 0) | (out.weights == 1)).all() and (out.weights.sum(-1) == 1).all()
    chosen = out.weights.argmax(-1)
    torch.testing.assert_close(out.context, keys[torch.arange(B), chosen])  # one value read forward
    out.context.pow(2).sum().backward()  # ... and a gradient through the relaxation backward
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in attention.scorer.parameters())


def test_gumbel_temperature_anneals_per_training_step_to_its_floor():
    attention = build_attention(
        {"mechanism": "gumbel", "temperature": 2.0, "min_temperature": 0.5, "anneal_rate": 0.5}, DQ, DK
    ).train()
    seen = []
    for _ in range(6):
        terms = attention.training_terms(None, None, None)
        seen.append(float(terms.metrics["gumbel_temperature"]))
    assert seen[0] == 2.0 and seen == sorted(seen, reverse=True) and seen[-1] == 0.5
    with pytest.raises(ValueError, match="min_temperature"):
        build_attention({"mechanism": "gumbel", "temperature": 0.2, "min_temperature": 0.5}, DQ, DK)


def test_gumbel_evaluation_is_the_argmax_like_hard_attention():
    query, keys, mask = inputs()
    gumbel = build_attention({"mechanism": "gumbel"}, DQ, DK).eval()
    hard = build_attention({"mechanism": "hard"}, DQ, DK).eval()
    hard.load_state_dict(gumbel.state_dict(), strict=False)
    torch.testing.assert_close(gumbel(query, keys, keys, mask).context, hard(query, keys, keys, mask).context)


# ─── sparse normalisers ────────────────────────────────────────────────────────────────────────
@pytest.mark.parametrize("name", ["sparsemax", "entmax15"])
def test_sparse_normalisers_give_exact_zeros(name):
    query, keys, mask = inputs()
    attention = build_attention({"mechanism": name, "score": "dot"}, DQ, DK)
    out = attention(query * 5, keys, keys, mask)  # peaked scores: most positions below the threshold
    real_zeros = (out.weights == 0) & mask
    assert real_zeros.any()  # exactly zero, not merely small
    assert (out.weights > 0).any(-1).all()  # and never all zero


# ─── top-k ─────────────────────────────────────────────────────────────────────────────────────
def test_topk_reads_k_positions_and_k_one_is_hard_evaluation():
    query, keys, mask = inputs()
    top3 = build_attention({"mechanism": "topk", "k": 3}, DQ, DK)
    out = top3(query, keys, keys, mask)
    assert ((out.weights > 0).sum(-1) == torch.minimum(mask.sum(-1), torch.tensor(3))).all()
    top1 = build_attention({"mechanism": "topk", "k": 1}, DQ, DK).train()  # k = 1 in training, too
    hard = build_attention({"mechanism": "hard"}, DQ, DK).eval()
    hard.load_state_dict(top1.state_dict(), strict=False)
    a, b = top1(query, keys, keys, mask), hard(query, keys, keys, mask)
    torch.testing.assert_close(a.context, b.context)
    torch.testing.assert_close(a.weights, b.weights)
    assert top1.traits()["selects_one"] and not top3.traits()["selects_one"]


# ─── marginal ──────────────────────────────────────────────────────────────────────────────────
def test_marginal_likelihood_equals_the_brute_force_sum():
    query, keys, mask = inputs()
    attention = build_attention({"mechanism": "marginal"}, DQ, DK).train()
    vocab = torch.nn.Linear(DK, 5)
    out = attention(query, keys, keys, mask)
    log_p = attention.readout(out, keys, vocab)  # (B, V)
    for b in range(B):
        brute = sum(out.probs[b, i] * torch.softmax(vocab(keys[b, i]), -1) for i in range(N) if mask[b, i])
        torch.testing.assert_close(log_p[b].exp(), brute)
    torch.testing.assert_close(log_p.exp().sum(-1), torch.ones(B))  # a distribution: valid logits


def test_marginal_decodes_with_the_top_k_positions():
    query, keys, mask = inputs()
    attention = build_attention({"mechanism": "marginal", "decode_top_k": 2}, DQ, DK).eval()
    vocab = torch.nn.Linear(DK, 5)
    out = attention(query, keys, keys, mask)
    log_p = attention.readout(out, keys, vocab)
    top, index = out.probs.topk(2, dim=-1)
    for b in range(B):
        weights = top[b] / top[b].sum()
        approx = sum(weights[j] * torch.softmax(vocab(keys[b, index[b, j]]), -1) for j in range(2))
        torch.testing.assert_close(log_p[b].exp(), approx)


# ─── local ─────────────────────────────────────────────────────────────────────────────────────
class Guarded(torch.Tensor):
    """A memory tensor that lets a mechanism gather rows inside ``allowed`` (per batch row) and nothing else:
    reading it any other way — a matmul, a sum, an index outside the window — raises."""

    allowed: torch.Tensor  # (B, N) bool

    @classmethod
    def __torch_function__(cls, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        name = getattr(func, "__name__", str(func))
        metadata = {"size", "dim", "__get__", "device", "dtype", "shape", "ndim", "__len__", "unsqueeze"}
        if name in metadata or name.startswith("__get"):
            return super().__torch_function__(func, types, args, kwargs)
        if name in ("gather", "take_along_dim"):
            index = args[2] if name == "gather" else args[1]
            rows = index[..., 0].reshape(index.size(0), -1)  # (B, …): positions read
            reached = torch.gather(cls.allowed, 1, rows)
            if not reached.all():
                raise AssertionError("read a position outside the window")
            plain = [a.as_subclass(torch.Tensor) if isinstance(a, Guarded) else a for a in args]
            return func(*plain, **kwargs)
        raise AssertionError(f"read the whole memory with {name}")


def test_local_evaluation_never_reads_outside_its_window():
    torch.manual_seed(0)
    long = 64
    attention = LocalAttention(DQ, DK, LocalAttentionConfig(window=3)).eval()
    query, keys = torch.randn(B, DQ), torch.randn(B, long, DK)
    mask = torch.ones(B, long, dtype=torch.bool)
    mask[1, 40:] = False
    prepared = attention.prepare(keys)
    centre = attention.centre(query, mask.sum(-1))
    positions = torch.arange(long).unsqueeze(0)
    Guarded.allowed = ((positions - centre.unsqueeze(1)).abs() <= 3) & mask
    guarded_keys, guarded_values = prepared.as_subclass(Guarded), keys.as_subclass(Guarded)
    out = attention.attend(query, guarded_keys, guarded_values, mask)
    plain = attention.attend(query, prepared, keys, mask)
    torch.testing.assert_close(out.context.as_subclass(torch.Tensor), plain.context)
    assert ((plain.weights > 0) <= Guarded.allowed).all()  # and weights only inside the window
    with pytest.raises(AssertionError, match="whole memory"):  # the guard does bite: soft reads everything
        build_attention({"mechanism": "soft"}, DQ, DK).eval().attend(query, guarded_keys, guarded_values, mask)


def test_local_training_matches_evaluation_inside_the_window():
    query, keys, mask = inputs()
    attention = LocalAttention(DQ, DK, LocalAttentionConfig(window=2))
    train_out = attention.train()(query, keys, keys, mask)
    eval_out = attention.eval()(query, keys, keys, mask)
    torch.testing.assert_close(train_out.weights, eval_out.weights)
    torch.testing.assert_close(train_out.context, eval_out.context)
