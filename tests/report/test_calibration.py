"""The report's claims are calibrated: simulated comparisons with a known truth
(:mod:`lightning_attn.report.simulation`: each run scores one shared test set of 200 sentences, its quality its
mechanism's plus a seed effect, its n-gram matches drawn from it — sacreBLEU's sufficient statistics, so the
tests resample exactly what a translation run logs; the seed spread, about 1.3 BLEU, is like the demo's).

One pair's test keeps its false-positive rate below α; a whole report — nine mechanisms, 36 pairs, and with
``--until-decided`` every look — keeps the chance of *any* false claim below α.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from lightning_attn.bleu import corpus_bleu_many
from lightning_attn.report import significance as sig
from lightning_attn.report import simulation
from lightning_attn.report.decision import Constraint, decide
from lightning_attn.report.diagnostics import diagnose
from lightning_attn.report.verdict import verdicts

SEEDS, COMPARISONS = 3, 500


def _compare(rng, shift: float, i: int) -> sig.SeedTest:
    sentences = simulation.Sentences.draw(rng)
    a, b = ([sentences.run(rng, quality) for _ in range(SEEDS)] for quality in (2.0 + shift, 2.0))
    values = [[float(corpus_bleu_many(r.sum(0))) for r in runs] for runs in (a, b)]
    return sig.seed_test(*values, a, items_b=b, statistic="sacrebleu", samples=200, seed=i)


def test_no_more_false_positives_than_alpha_with_3_seeds_a_side():
    rng = np.random.default_rng(2026)
    results = [_compare(rng, 0.0, i) for i in range(COMPARISONS)]
    rate = np.mean([r.significant for r in results])
    assert rate <= sig.ALPHA, rate
    # what the test guards against: resampling 3 seeds cannot show their variance, so a bootstrap over seeds
    # and items alone calls about twice alpha significant here
    assert np.mean([r.items_p < sig.ALPHA for r in results]) > 1.5 * sig.ALPHA


def test_the_power_the_report_states_is_the_power_it_has():
    rng = np.random.default_rng(7)
    results = [_compare(rng, 0.22, i) for i in range(300)]  # about 3 seed standard deviations of BLEU apart
    power = np.mean([r.significant for r in results])
    deltas = np.array([r.delta for r in results])
    # Welch's power at the true difference and spread (noncentral t, 2 x (3 - 1) degrees of freedom)
    df = 2 * (SEEDS - 1)
    predicted = stats.nct.sf(stats.t.ppf(1 - sig.ALPHA / 2, df), df, deltas.mean() / deltas.std(ddof=1))
    assert 0.5 < power < 0.95 and abs(power - predicted) < 0.1, (power, predicted)
    # each comparison states the difference its test finds with 80 % power; this one has less than 80 %, and
    # the typical stated difference is accordingly larger than the true one
    assert power < 0.8 and np.median([r.detectable for r in results]) > deltas.mean()


# ─── the report as a family: nine identical mechanisms, every pair tested ─────────────────────────────────────
K, REPORTS = 9, 1000
SAME = {f"m{k}": 2.0 for k in range(K)}


def _claims(compared: simulation.Compared) -> tuple[bool, bool, bool]:
    """Whether the report over ``compared`` claims any difference: in a pair's outcome, in a verdict, in a decision
    (with a constraint every mechanism meets, and without) — through the functions ``report`` calls."""
    rows, tests = compared.rows, compared.tests
    diagnoses = diagnose(rows, tests, {}, SEEDS)
    verdict = verdicts(rows, tests, diagnoses)["translation"]
    constrained = decide(rows, tests, diagnoses, constraints=[Constraint.parse("speed/infer_latency_ms_p50_b1<=2")])
    unconstrained = decide(rows, tests, diagnoses, constraints=[])
    in_verdict = any(p.outcome in ("better", "worse") for p in verdict.pairs) or verdict.winner is not None
    in_decision = "Less accurate" in constrained["translation"].text
    in_decision |= " better than " in unconstrained["translation"].text
    return any(t.significant for t in tests), in_verdict, in_decision


@pytest.mark.slow  # a thousand simulated reports of 36 pairs each: about a minute (-m slow)
def test_a_report_over_nine_identical_mechanisms_claims_a_difference_in_at_most_alpha_of_reports():
    rng = np.random.default_rng(37)
    reports = (simulation.compare(rng, SAME) for _ in range(REPORTS))
    claimed = np.array([_claims(r) for r in reports if len(r.tests) == r.tests[0].family == K * (K - 1) // 2])
    assert len(claimed) == REPORTS  # every report tested all 36 pairs, as one family
    # pairs, verdicts, decisions: each at most alpha (tested one by one at 5 %, about half the reports claimed one)
    assert (claimed.mean(0) <= sig.ALPHA).all(), claimed.mean(0)
    # and it finds a difference that is there: one mechanism far below the others (about 10 seed deviations)
    found = sum(
        any(t.significant and t.b == "m8" for t in simulation.compare(rng, SAME | {"m8": 1.2}).tests) for _ in range(50)
    )
    assert found >= 40, found


@pytest.mark.slow  # a thousand simulated comparisons of up to 3 looks each: about half a minute (-m slow)
def test_seeds_until_decided_keep_the_family_error_at_alpha_over_every_look():
    # over seeds only (the looks are what is tested here; the test over items is the one above)
    rng = np.random.default_rng(38)
    runs = claimed = 0
    for _ in range(REPORTS):
        compared = simulation.compare(rng, SAME, most=5, items=False)
        claimed += any(t.significant for t in compared.tests)
        runs += sum(compared.runs.values())
    assert claimed / REPORTS <= sig.ALPHA, claimed / REPORTS
    assert runs > REPORTS * K * SEEDS  # it did look more than once: identical mechanisms are rarely decided at once
