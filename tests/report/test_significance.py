"""The statistics a verdict rests on give the known answers (their calibration: test_calibration.py)."""

from __future__ import annotations

import pytest

from lightning_attn.bleu import corpus_bleu, sentence_statistics
from lightning_attn.report import significance as sig

from .study import REFS, hypotheses


def test_the_seed_level_test_gives_the_known_answers():
    stats = {
        name: [sentence_statistics(hypotheses(noise, seed=s + 100 * k), REFS) for s in range(3)]
        for k, (name, noise) in enumerate([("good", 0.05), ("bad", 0.4), ("good_too", 0.05)])
    }
    values = {name: [corpus_bleu(s.sum(0)) for s in runs] for name, runs in stats.items()}

    def test(a: str, b: str) -> sig.SeedTest:
        return sig.seed_test(values[a], values[b], stats[a], items_b=stats[b], statistic="sacrebleu", samples=500)

    better = test("good", "bad")
    assert better.significant and better.delta > 20 and better.ci_low > 0 and better.items_ci_low > 0
    assert better.n_items == len(REFS) and better.hedges_g > 3 and better.detectable < better.delta
    equal = test("good", "good_too")
    assert not equal.significant and equal.ci_low < 0 < equal.ci_high
    same = test("good", "good")
    assert same.p_value == 1.0 and same.delta == 0.0
    alone = sig.seed_test(values["good"], values["bad"])  # no per-item statistics: the test over seeds alone
    assert alone.significant and alone.n_items == 0 and alone.items_p is None


def test_equal_scores_from_different_outputs_are_not_significant():
    refs = [["the cat sees a bird"]] * 50
    same_score = ["the cat sees the bird"] * 25 + ["the cat sees the dog"] * 25
    flipped = ["the cat sees the dog"] * 25 + ["the cat sees the bird"] * 25
    assert same_score != flipped
    items = [sentence_statistics(h, refs) for h in (same_score, flipped)]
    score = float(corpus_bleu(items[0].sum(0)))
    assert score == float(corpus_bleu(items[1].sum(0)))
    tie = sig.seed_test(
        [score, score], [score, score], [items[0]] * 2, items_b=[items[1]] * 2, statistic="sacrebleu", samples=200
    )
    assert tie.p_value == 1.0 and tie.items_p == 1.0 and not tie.significant


def test_step_down_is_holms_with_shaffers_count_of_hypotheses_that_can_be_true_at_once():
    # three pairs, one hypothesis each: Holm's adjusted p-values
    assert sig.step_down([(0, 0.01), (1, 0.04), (2, 0.03)]) == pytest.approx([0.03, 0.06, 0.06])
    # one pair's difference and equivalence: only one can be true, so neither is multiplied by two
    assert sig.step_down([(0, 0.01), (0, 0.02)]) == pytest.approx([0.01, 0.02])
    # two pairs, four hypotheses: at most two true at once
    assert sig.step_down([(0, 0.01), (0, 0.2), (1, 0.02), (1, 0.3)]) == pytest.approx([0.02, 0.4, 0.04, 0.4])
    assert sig.step_down([(0, 0.9), (1, 0.8)]) == [1.0, 1.0]  # never above 1


def test_equivalence_is_two_one_sided_tests_over_seeds_and_items():
    close = sig.seed_test([30.0, 30.2, 29.9], [30.1, 29.8, 30.0], margin=1.0)
    assert close.equivalence_p < 0.05 and close.margin == 1.0
    far = sig.seed_test([33.0, 33.2, 32.9], [30.1, 29.8, 30.0], margin=1.0)
    assert far.equivalence_p > 0.5
    assert sig.seed_test([30.0, 30.2, 29.9], [30.1, 29.8, 30.0]).equivalence_p is None  # no margin, no test
    with pytest.raises(ValueError, match="positive"):
        sig.seed_test([1.0, 2.0], [1.0, 2.0], margin=0.0)
