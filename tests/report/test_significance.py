"""The statistics a verdict rests on give the known answers (their calibration: test_calibration.py)."""

from __future__ import annotations

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
        return sig.seed_test(values[a], values[b], stats[a], stats[b], "sacrebleu", samples=500)

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
    assert sig.best_run_test(*items, "sacrebleu") == 1.0
