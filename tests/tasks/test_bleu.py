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
