"""Hard (stochastic) attention trained with REINFORCE, as in *Show, Attend and Tell*.

Training: each decoder step samples **one** position ``s ~ Categorical(α)`` and reads its value;
with probability ``semi_sampling_p`` the step uses the soft expectation ``Σ α_i v_i`` instead
("semi-sampling", Xu et al. 2015 §4.1), which lowers the variance of the estimator.
Evaluation (``eval_read``): by default the argmax of the scores, read with a gather — no softmax, entropy
or weighted sum, the saving hard attention promises at inference. ``expectation`` reads ``Σ α_i v_i``
instead, as *Show, Attend and Tell*'s released code decodes its hard models unless asked to sample
(arctic-captions ``generate_caps.py``: ``sampling=False`` and ``argmax=False`` give the expected
context): hard *training*, soft *reading*, every position scored and read — compare it with soft
attention for accuracy, not for inference cost.

The attention scorer gets its gradient from the score-function estimator

    ∇ ≈ (R − b) · ∇ log p(s) + λ_H · ∇ H(α)

with ``R`` the log-likelihood of the target sentence (by default per token, as arctic-captions'
``RL_sumCost`` option: the sum grows with length and makes long sentences dominate the variance),
``b`` a moving average of ``R`` and
``H`` the entropy of ``α``; :meth:`HardAttention.reinforce_loss` builds the surrogate loss
whose gradient is that estimate. Defaults are the arctic-captions settings but one: arctic-captions
divides its REINFORCE gradient by 10 (``reinforce_weight`` 0.1, which the Multi30k presets use: on real
text the full term's noise swamps the scorer's gradient), while the default here is 1.0, the unscaled
estimator (the documentation's Results page compares the two).

Which reward each step's choice is credited with is ``credit``:

- ``sentence`` (Xu et al.): every step, the whole target's log-likelihood. Unbiased, but a step's
  choice is blamed for every other token's luck: the variance grows with the sentence.
- ``to_go``: the log-likelihood of this token and the ones after it. Still unbiased (a choice cannot
  change the tokens before it), with the earlier tokens' noise removed.
- ``step`` (Deng et al. 2018's REINFORCE baseline): only this token's ``log p(y_t | ·)``. Exact when a
  choice reaches only its own token (their decoder); here the context is also fed to the next step,
  so it ignores that later effect — biased, in exchange for far lower variance.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from .base import (
    AttentionOutput,
    AttentionTrace,
    TrainingTerms,
    entropy_from_log_probs,
    gather_rows,
    masked_scores,
    read_best,
    weighted_sum,
)
from .soft import SoftAttention, SoftAttentionConfig


@dataclass
class HardAttentionConfig(SoftAttentionConfig):
    """Hard attention; the REINFORCE knobs default to arctic-captions' settings."""

    mechanism: str = "hard"
    baseline_decay: float = 0.9  # b ← decay · b + (1 − decay) · mean(R)
    entropy_weight: float = 0.002  # λ_H, bonus on the entropy of α
    semi_sampling_p: float = 0.5  # probability that a step uses the soft expectation instead of a sample
    reinforce_weight: float = 1.0  # scale of the REINFORCE surrogate relative to the NLL (arctic-captions: 0.1)
    reward_per_token: bool = True  # R = mean token log-likelihood (arctic-captions' RL_sumCost), else the sum
    credit: str = "sentence"  # the reward a step's choice gets: sentence, to_go or step (module docstring)
    eval_read: str = "argmax"  # at evaluation: argmax (one position, gathered) or expectation (Σ α_i v_i)


#: the rewards a step's choice can be credited with (:attr:`HardAttentionConfig.credit`)
CREDITS = ("sentence", "to_go", "step")
#: how evaluation reads the values (:attr:`HardAttentionConfig.eval_read`)
EVAL_READS = ("argmax", "expectation")


@dataclass
class ReinforceTerms:
    """The surrogate loss and what a stability monitor wants to see of it."""

    loss: Tensor
    advantage_mean: Tensor
    advantage_var: Tensor
    baseline: Tensor


def sample_positions(probs: Tensor) -> Tensor:
    """One index per row of ``probs (…, N)`` by inverse-CDF sampling: ``(…,)``.

    Uses one uniform number per row, so appending zero-probability padding never changes the
    draw, and a position with probability 0 is never chosen (the CDF does not rise there).
    """
    rows = probs.reshape(-1, probs.size(-1))
    cdf = rows.cumsum(dim=-1)
    u = torch.rand(rows.size(0), 1, device=probs.device, dtype=probs.dtype) * cdf[:, -1:]
    index = torch.searchsorted(cdf, u, right=True).squeeze(1).clamp_max(rows.size(1) - 1)
    return index.view(probs.shape[:-1])


class HardAttention(SoftAttention):
    """Stochastic hard attention (Xu et al., 2015).

    Args:
        query_dim: size of the decoder's query, as :class:`SoftAttention`.
        key_dim: size of the encoder states it attends over, as :class:`SoftAttention`.
        config: the scorer and the REINFORCE knobs (:class:`HardAttentionConfig`, its defaults when omitted):
            ``baseline_decay`` of the moving-average reward baseline, ``entropy_weight`` λ_H of the entropy
            bonus, ``semi_sampling_p`` the probability, per example and step, of using the soft expectation,
            ``reinforce_weight`` the multiplier of the whole surrogate loss, ``reward_per_token`` whether the
            reward is the mean token log-likelihood of the target (else the sum), ``credit`` which
            tokens' log-likelihood a step's choice is rewarded with (``sentence``, ``to_go``, ``step``),
            ``eval_read`` what evaluation reads (``argmax``: one position; ``expectation``: ``Σ α_i v_i``).
    """

    stochastic = True
    selects_one = True
    training_metrics = ("reinforce_baseline", "reinforce_advantage_mean", "reinforce_advantage_var")
    unsupported = {
        "self": (
            "a sampled position in self-attention would make every position of every layer a latent choice "
            "credited with the one sentence reward; use it in cross-attention (attention.where=cross)"
        )
    }

    def __init__(self, query_dim: int, key_dim: int, config: HardAttentionConfig | None = None):
        c = config or HardAttentionConfig()
        super().__init__(query_dim, key_dim, c)
        if not 0.0 <= c.semi_sampling_p <= 1.0:
            raise ValueError(f"semi_sampling_p must lie in [0, 1], got {c.semi_sampling_p}")
        if not 0.0 <= c.baseline_decay < 1.0:
            raise ValueError(f"baseline_decay must lie in [0, 1), got {c.baseline_decay}")
        if c.credit not in CREDITS:
            raise ValueError(f"credit must be one of {', '.join(CREDITS)}, got {c.credit!r}")
        if c.eval_read not in EVAL_READS:
            raise ValueError(f"eval_read must be one of {', '.join(EVAL_READS)}, got {c.eval_read!r}")
        self.baseline_decay = c.baseline_decay
        self.entropy_weight = c.entropy_weight
        self.semi_sampling_p = c.semi_sampling_p
        self.reinforce_weight = c.reinforce_weight
        self.reward_per_token = c.reward_per_token
        self.credit = c.credit
        self.eval_read = c.eval_read
        self.selects_one = c.eval_read == "argmax"  # the expected context reads every position
        # The baseline is state, not a parameter: it is saved in checkpoints and synchronised by DDP.
        self.register_buffer("baseline", torch.zeros(()))
        self.register_buffer("baseline_started", torch.zeros((), dtype=torch.bool))

    def read(self, query: Tensor, prepared_keys: Tensor, values: Tensor, mask: Tensor) -> AttentionOutput:
        """``(…, T, Dq), (…, N, *), (…, N, Dv), (…, T, N) -> context (…, T, Dv)``."""
        if not self.training and self.eval_read == "expectation":
            return super().read(query, prepared_keys, values, mask)  # soft attention's read of the same α
        if not self.training:
            # evaluation: the most likely position, read directly. The argmax of the scores is the
            # argmax of α, so no softmax, no entropy, no weighted sum: the saving hard attention
            # promises at inference. ``probs`` is then the one-hot choice (the policy actually
            # followed); :meth:`distribution` still gives α to whoever wants to look at it.
            return read_best(masked_scores(self.scorer.score(query, prepared_keys), mask), values)
        # 1. the attention distribution α, exactly as soft attention computes it
        log_probs = self.distribution(query, prepared_keys, mask)
        probs = log_probs.exp()
        entropy = entropy_from_log_probs(log_probs, mask)
        # 2. training: sample a position per row (no gradient flows through the choice) ...
        with torch.no_grad():
            index = sample_positions(probs)
            sampled = torch.rand(probs.shape[:-1], device=probs.device) >= self.semi_sampling_p
        log_prob = log_probs.gather(-1, index.unsqueeze(-1)).squeeze(-1) * sampled
        # 3. ... and mix: sampled rows read one value, semi-sampled rows the soft expectation
        one_hot = torch.zeros_like(probs).scatter_(-1, index.unsqueeze(-1), 1.0)
        use_sample = sampled.unsqueeze(-1)
        context = torch.where(use_sample, gather_rows(values, index), weighted_sum(probs, values))
        weights = torch.where(use_sample, one_hot, probs)
        return AttentionOutput(context, weights, probs, log_prob=log_prob, entropy=entropy, extras={"sampled": sampled})

    def training_terms(self, trace: AttentionTrace, token_log_lik: Tensor, step_mask: Tensor) -> TrainingTerms:
        """The REINFORCE surrogate, rewarded with the target's log-likelihood under the attention sampled;
        and what a stability monitor wants to see of the estimator."""
        terms = self.reinforce_loss(token_log_lik, trace.log_prob, trace.entropy, step_mask)
        return TrainingTerms(
            losses={"reinforce_loss": terms.loss},
            metrics={
                "reinforce_baseline": terms.baseline,
                "reinforce_advantage_mean": terms.advantage_mean,
                "reinforce_advantage_var": terms.advantage_var,
            },
        )

    def reinforce_loss(
        self, token_log_lik: Tensor, log_prob: Tensor, entropy: Tensor, step_mask: Tensor
    ) -> ReinforceTerms:
        """Surrogate loss whose gradient is the REINFORCE estimate for the attention scorer.

        Args:
            token_log_lik: ``(B, T)`` log-likelihood of each target token (0 at padding); the reward
                is built from it and treated as a constant.
            log_prob: ``(B, T)`` log-probability of each step's selection (0 where a step did not sample).
            entropy: ``(B, T)`` entropy of each step's distribution.
            step_mask: ``(B, T)`` bool, True at real (non-padding) target steps.

        Both terms are divided by the number of real target steps, the normalisation of the
        token-level NLL they are added to. Updates the moving-average baseline in training mode.
        """
        n_steps = step_mask.sum().clamp_min(1)
        # 1. the reward each step's choice is credited with, (B, T), and what the baseline tracks:
        # the mean reward per sentence (``sentence``) or per real step (the others)
        reward, per_row = self.step_rewards(token_log_lik.detach() * step_mask, step_mask)
        batch_mean = reward[:, 0].mean() if per_row else reward[step_mask].mean()
        # 2. advantage against the baseline (the first batch starts the average, avoiding a cold start at 0)
        baseline = torch.where(self.baseline_started, self.baseline, batch_mean)
        advantage = reward - baseline
        # 3. score-function term and entropy bonus
        policy = -(advantage * log_prob * step_mask).sum() / n_steps
        bonus = -self.entropy_weight * (entropy * step_mask).sum() / n_steps
        # 4. move the baseline towards this batch's mean reward
        if self.training:
            with torch.no_grad():
                self.baseline.copy_(self.baseline_decay * baseline + (1 - self.baseline_decay) * batch_mean)
                self.baseline_started.fill_(True)
        seen = advantage[:, 0] if per_row else advantage[step_mask]
        return ReinforceTerms(
            loss=self.reinforce_weight * (policy + bonus),
            advantage_mean=seen.mean(),
            advantage_var=seen.var(unbiased=False),
            baseline=baseline,
        )

    def step_rewards(self, token_log_lik: Tensor, step_mask: Tensor) -> tuple[Tensor, bool]:
        """``(B, T)`` token log-likelihoods (0 at padding) -> ``(B, T)`` the reward of each step's choice,
        and whether it is one reward per row (``sentence``). Sums become means with ``reward_per_token``."""
        steps = step_mask.to(token_log_lik.dtype)
        if self.credit == "step":
            return token_log_lik, False
        if self.credit == "to_go":
            # suffix sums: this token and every later one
            total = token_log_lik.flip(1).cumsum(1).flip(1)
            count = steps.flip(1).cumsum(1).flip(1)
        else:
            total = token_log_lik.sum(dim=1, keepdim=True).expand_as(token_log_lik)
            count = steps.sum(dim=1, keepdim=True).expand_as(token_log_lik)
        return (total / count.clamp_min(1) if self.reward_per_token else total), self.credit == "sentence"
