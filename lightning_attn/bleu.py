"""Corpus BLEU as papers report it — sacreBLEU's, on detokenised, case-sensitive text — defined once, for
the tasks' metrics and the report's significance tests alike.

sacreBLEU's defaults: its ``13a`` tokenisation (the WMT ``mteval-v13a`` script), case-sensitive,
exponential smoothing. A corpus score is a function of summed **sufficient statistics** — per sentence the
hypothesis and reference lengths and, for n = 1..4, the matching and total n-grams — so it can be
accumulated batch by batch, summed across DDP ranks, or resampled sentence by sentence, and still be
exactly ``sacrebleu.corpus_bleu`` of the whole set (a test checks this).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

#: sacreBLEU's settings, stated so a run can record them (see :func:`signature`)
TOKENIZE = "13a"
SMOOTH = "exp"
N_STATS = 2 + 2 * 4  # hyp length, ref length, 4 match counts, 4 totals


def _metric():
    from sacrebleu.metrics import BLEU

    # effective_order only changes sentence-level scores, which are never used: it silences a warning
    return BLEU(tokenize=TOKENIZE, smooth_method=SMOOTH, effective_order=True)


def sentence_statistics(hypotheses: Sequence[str], references: Sequence[Sequence[str]]) -> np.ndarray:
    """``(n_sentences, 10)`` sufficient statistics of each hypothesis against its references."""
    bleu = _metric()
    rows = []
    for hyp, refs in zip(hypotheses, references, strict=True):
        s = bleu.sentence_score(hyp, list(refs))
        rows.append([s.sys_len, s.ref_len, *s.counts, *s.totals])
    return np.asarray(rows, dtype=np.int64).reshape(-1, N_STATS)


def corpus_bleu(stats: Sequence[float]) -> float:
    """Corpus BLEU (0-100) of summed statistics ``(10,)``."""
    from sacrebleu.metrics import BLEU

    v = [int(round(float(x))) for x in stats]
    return BLEU.compute_bleu(v[2:6], v[6:10], v[0], v[1], smooth_method=SMOOTH).score


def signature(n_refs: int = 1) -> str:
    """sacreBLEU's signature of these settings, e.g. ``nrefs:1|case:mixed|eff:no|tok:13a|smooth:exp|version:2.6.0``."""
    from sacrebleu.metrics import BLEU

    bleu = BLEU(tokenize=TOKENIZE, smooth_method=SMOOTH)
    bleu.corpus_score(["a"], [["a"]] * n_refs)  # the signature needs to know the number of references
    return str(bleu.get_signature())
