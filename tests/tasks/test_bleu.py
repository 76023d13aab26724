"""Our BLEU (torchmetrics' SacreBLEUScore, DDP-synchronised) is sacrebleu's corpus BLEU."""

from __future__ import annotations

import pytest
import sacrebleu
from torchmetrics.text import SacreBLEUScore

HYPS = ["The cat sat on the mat.", "A dog runs in the park!", "Two men, playing football."]
REFS = ["The cat sat on a mat.", "A dog is running in the park!", "Two men play football."]


def test_torchmetrics_bleu_matches_sacrebleu():
    metric = SacreBLEUScore(tokenize="13a")
    metric.update(HYPS[:2], [[r] for r in REFS[:2]])
    metric.update(HYPS[2:], [[r] for r in REFS[2:]])  # accumulated over batches like an epoch
    assert float(metric.compute()) * 100 == pytest.approx(sacrebleu.corpus_bleu(HYPS, [REFS]).score, abs=1e-4)
