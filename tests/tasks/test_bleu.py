"""Our BLEU (lightning_attn.bleu, CorpusBLEU) is sacreBLEU's corpus BLEU with its defaults, as papers report."""

from __future__ import annotations

import numpy as np
import pytest
import sacrebleu

from lightning_attn import bleu
from lightning_attn.tasks.metrics import CorpusBLEU

HYPS = ["The cat sat on the mat.", "A dog runs in the park!", "Two men, playing football."]
REFS = ["The cat sat on a mat.", "A dog is running in the park!", "Two men play football."]


def test_metric_accumulated_over_batches_is_sacrebleu_corpus_bleu():
    metric = CorpusBLEU()
    metric.update(HYPS[:2], [[r] for r in REFS[:2]])
    metric.update(HYPS[2:], [[r] for r in REFS[2:]])  # accumulated over batches like an epoch
    assert float(metric.compute()) == pytest.approx(sacrebleu.corpus_bleu(HYPS, [REFS]).score, abs=1e-4)


def test_smoothing_is_sacrebleus_default_where_an_order_has_no_match():
    hyps, refs = ["a b c d e", "f g h i"], ["a b x d y", "f g z i"]  # no 3-, 4-gram match: unsmoothed BLEU is 0
    stats = bleu.sentence_statistics(hyps, [[r] for r in refs]).sum(0)
    expected = sacrebleu.corpus_bleu(hyps, [refs]).score
    assert expected > 0 and bleu.corpus_bleu(stats) == pytest.approx(expected)


def test_case_sensitive_and_detokenised():
    lower = [h.lower() for h in HYPS]
    assert (
        bleu.corpus_bleu(bleu.sentence_statistics(lower, [[r] for r in REFS]).sum(0))
        < sacrebleu.corpus_bleu(HYPS, [REFS]).score
    )
    # 13a tokenisation splits punctuation itself: "mat." and "mat ." are the same hypothesis
    spaced = ["The cat sat on the mat ."]
    assert np.array_equal(bleu.sentence_statistics(spaced, [REFS[:1]]), bleu.sentence_statistics(HYPS[:1], [REFS[:1]]))


def test_signature_states_the_settings():
    sig = bleu.signature()
    assert sig.startswith("nrefs:1|case:mixed|eff:no|tok:13a|smooth:exp|version:")


def test_captioning_bleu4_statistics_are_torchmetrics_bleu4_on_any_subset():
    import random

    from torchmetrics.text import BLEUScore

    from lightning_attn.bleu import bleu4_many, bleu4_statistics

    words, rng = "a b c".split(), random.Random(0)  # few words: every subset matches some 4-grams
    hyps = [" ".join(rng.choices(words, k=rng.randint(0, 9))) for _ in range(300)]
    refs = [[" ".join(rng.choices(words, k=rng.randint(1, 9))) for _ in range(rng.randint(1, 3))] for _ in hyps]
    stats = bleu4_statistics(hyps, refs)
    for _ in range(10):
        subset = rng.sample(range(len(hyps)), 150)
        metric = BLEUScore(n_gram=4)
        metric.update([hyps[i] for i in subset], [refs[i] for i in subset])
        expected = float(metric.compute()) * 100
        assert expected > 0 and float(bleu4_many(stats[subset].sum(0))) == pytest.approx(expected, abs=1e-4)


def test_the_vectorised_corpus_bleu_is_sacrebleus():
    import numpy as np

    from lightning_attn.bleu import corpus_bleu, corpus_bleu_many

    rng = np.random.default_rng(0)
    for _ in range(2000):  # zero matches, zero n-grams of some order, short output: every branch of compute_bleu
        totals = rng.integers(0, 6, 4) * rng.integers(0, 2, 4)
        stats = np.array(
            [rng.integers(0, 20), rng.integers(0, 20), *np.minimum(rng.integers(0, 6, 4), totals), *totals]
        )
        assert float(corpus_bleu_many(stats)) == pytest.approx(corpus_bleu(stats), abs=1e-9)
