"""Corpus BLEU as papers report it — sacreBLEU's, on detokenised, case-sensitive text — defined once, for
the tasks' metrics and the report's significance tests alike; and captioning's BLEU-4 as torchmetrics
scores it (whitespace tokens, several references, no smoothing), so that a report resamples exactly the
score its table shows.

sacreBLEU's defaults: its ``13a`` tokenisation (the WMT ``mteval-v13a`` script), case-sensitive,
exponential smoothing. A corpus score is a function of summed **sufficient statistics** — per sentence the
hypothesis and reference lengths and, for n = 1..4, the matching and total n-grams — so it can be
accumulated batch by batch, summed across DDP ranks, or resampled sentence by sentence, and still be
exactly ``sacrebleu.corpus_bleu`` of the whole set (a test checks this).
"""

from __future__ import annotations

from collections import Counter
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


def corpus_bleu_many(stats: np.ndarray) -> np.ndarray:
    """:func:`corpus_bleu` of many summed statistics at once: ``(..., 10) -> (...)``, exactly sacreBLEU's
    ``compute_bleu`` with exponential smoothing (a bootstrap scores thousands of resamples)."""
    s = np.asarray(stats, dtype=np.float64)
    sys_len, ref_len, correct, total = s[..., 0], s[..., 1], s[..., 2:6], s[..., 6:10]
    with np.errstate(divide="ignore", invalid="ignore"):
        bp = np.where(sys_len < ref_len, np.where(sys_len > 0, np.exp(1 - ref_len / sys_len), 0.0), 1.0)
        smooth = np.ones(sys_len.shape)
        active = np.ones(sys_len.shape, dtype=bool)
        logs = np.zeros(sys_len.shape)
        for n in range(4):
            active &= total[..., n] > 0  # sacreBLEU stops at the first order with no n-grams at all
            zero = correct[..., n] == 0
            smooth = np.where(active & zero, smooth * 2, smooth)
            precision = np.where(zero, 100.0 / (smooth * total[..., n]), 100.0 * correct[..., n] / total[..., n])
            logs += np.where(active & (precision > 0), np.log(np.where(active, precision, 1.0)), -9999999999.0)
        score = bp * np.exp(logs / 4)
    return np.where(correct.sum(-1) > 0, score, 0.0)


def _ngrams(tokens: list[str], n: int) -> Counter:
    return Counter(tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1))


def bleu4_statistics(hypotheses: Sequence[str], references: Sequence[Sequence[str]]) -> np.ndarray:
    """``(n_items, 10)`` statistics of torchmetrics' ``BLEUScore(n_gram=4)``: per hypothesis its length, the
    length of the reference closest to it (the first such), and for n = 1..4 its n-grams clipped by the most
    any one reference has, and its n-grams — whitespace tokens, as torchmetrics splits them."""
    rows = []
    for hyp, refs in zip(hypotheses, references, strict=True):
        pred = hyp.split()
        targets = [r.split() for r in refs]
        lengths = [len(t) for t in targets]
        diffs = [abs(len(pred) - x) for x in lengths]
        row = [len(pred), lengths[diffs.index(min(diffs))]]
        clipped, counts = [], []
        for n in range(1, 5):
            mine, most = _ngrams(pred, n), Counter()
            for t in targets:
                most |= _ngrams(t, n)
            clipped.append(sum((mine & most).values()))
            counts.append(sum(mine.values()))
        rows.append(row + clipped + counts)
    return np.asarray(rows, dtype=np.int64).reshape(-1, N_STATS)


def bleu4_many(stats: np.ndarray) -> np.ndarray:
    """torchmetrics' BLEU-4 x 100 of summed :func:`bleu4_statistics`: ``(..., 10) -> (...)``; 0 when some
    order has no match (no smoothing)."""
    s = np.asarray(stats, dtype=np.float64)
    sys_len, ref_len, correct, total = s[..., 0], s[..., 1], s[..., 2:6], s[..., 6:10]
    with np.errstate(divide="ignore", invalid="ignore"):
        geometric = np.exp(np.log(correct / total).mean(-1))
        bp = np.where(sys_len > ref_len, 1.0, np.exp(1 - ref_len / sys_len))
    return np.where(correct.min(-1) > 0, 100.0 * bp * geometric, 0.0)
