"""CIDEr-D (Vedantam, Zitnick and Parikh, 2015) exactly as the coco-caption code scores it — the
``CiderScorer`` of ``pycocoevalcap`` — without that 104 MB package (its METEOR tables and SPICE/CoreNLP jars;
only this scorer was ever used). A test checks equality against ``pycocoevalcap`` where it is installed
(``pip install 'lightning-attn[dev]'``).

For each image, the hypothesis and every reference become TF-IDF vectors of their 1- to 4-grams, with
document frequencies counted over the references of the evaluated set (an n-gram's document frequency is
the number of images one of whose references contains it; n-grams no reference has count as 1). Per n-gram
order, the score is the cosine similarity with each reference, with the hypothesis' counts clipped at the
reference's (the "-D"), times a Gaussian length penalty ``exp(-δ² / 2σ²)``, σ = 6; averaged over the
orders and the references, times 10. The corpus score is the mean over images (COCO reports it like 1.05).

coco-caption's quirks are kept, so the numbers are the ones papers report:

* captions are split on whitespace only — coco-caption's own pipeline first runs its PTB tokenizer
  (lowercase, punctuation dropped); this project's Karpathy-format captions are already tokenised that way,
  and the built-in scenes' captions keep ``,`` as a word of their own (``pycocoevalcap`` was called the same
  way, on joined tokens);
* the length δ compares is the number of **bigrams** (coco-caption's ``if n == 1`` tests the 0-based
  order), so an empty caption and a one-word one are equally long;
* the set's size enters the IDF as ``log N``: with one image every weight is 0 and so is the score.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence

N = 4  # 1- to 4-grams
SIGMA = 6.0  # the length penalty's standard deviation, in words (bigrams, see above)

Vector = tuple[list[dict[tuple[str, ...], float]], list[float], int]  # per order: weights; per order: norm; length


def ngram_counts(sentence: str, n: int = N) -> Counter[tuple[str, ...]]:
    """The 1- to ``n``-grams of ``sentence`` (split on whitespace) and how often each occurs."""
    words = sentence.split()
    counts: Counter[tuple[str, ...]] = Counter()
    for k in range(1, n + 1):
        for i in range(len(words) - k + 1):
            counts[tuple(words[i : i + k])] += 1
    return counts


def cider_d_scores(
    hypotheses: Sequence[str], references: Sequence[Sequence[str]], n: int = N, sigma: float = SIGMA
) -> list[float]:
    """Per-image CIDEr-D.

    Args:
        hypotheses: ``(I,)`` one generated caption per image, words separated by spaces.
        references: ``(I, R_i)`` each image's reference captions (at least one per image), words separated by
            spaces; together they are the corpus the document frequencies come from.
        n: the longest n-gram; sigma: the length penalty's standard deviation.

    Returns:
        ``(I,)`` the images' scores, each in [0, 10] (per order a clipped cosine times a penalty, both at most
        1; averaged, times 10).

    Raises:
        ValueError: the two lists differ in length, or an image has no reference.
    """
    if len(hypotheses) != len(references):
        raise ValueError(f"{len(hypotheses)} hypotheses but {len(references)} reference lists")
    if any(len(refs) == 0 for refs in references):
        raise ValueError("every image needs at least one reference caption")
    if not hypotheses:
        return []
    hyp_counts = [ngram_counts(h, n) for h in hypotheses]
    ref_counts = [[ngram_counts(r, n) for r in refs] for refs in references]
    document_frequency: Counter[tuple[str, ...]] = Counter()
    for refs in ref_counts:
        document_frequency.update({gram for counts in refs for gram in counts})
    log_images = math.log(len(references))

    def vector(counts: Counter[tuple[str, ...]]) -> Vector:
        return _vector(counts, document_frequency, log_images, n)

    scores = []
    for hyp, refs in zip(hyp_counts, ref_counts):
        mine = vector(hyp)
        per_order = [0.0] * n
        for ref in refs:
            per_order = [a + b for a, b in zip(per_order, _similarity(mine, vector(ref), n, sigma))]
        scores.append(sum(per_order) / n / len(refs) * 10.0)
    return scores


def _vector(counts: Counter[tuple[str, ...]], document_frequency: Counter, log_images: float, n: int) -> Vector:
    """A caption's tf-idf weights per n-gram order, their norms and its length (coco-caption's ``counts2vec``)."""
    weights: list[dict[tuple[str, ...], float]] = [{} for _ in range(n)]
    squares = [0.0] * n
    length = 0
    for gram, term_frequency in counts.items():
        order = len(gram) - 1
        weight = float(term_frequency) * (log_images - math.log(max(1.0, document_frequency[gram])))
        weights[order][gram] = weight
        squares[order] += weight**2
        if order == 1:  # coco-caption's length: the number of bigrams
            length += term_frequency
    return weights, [math.sqrt(s) for s in squares], length


def _similarity(hyp: Vector, ref: Vector, n: int, sigma: float) -> list[float]:
    """Per order, the clipped cosine of a hypothesis and a reference times the length penalty (``simcos``)."""
    (hyp_weights, hyp_norms, hyp_length), (ref_weights, ref_norms, ref_length) = hyp, ref
    penalty = math.exp(-(float(hyp_length - ref_length) ** 2) / (2 * sigma**2))
    values = []
    for order in range(n):
        theirs = ref_weights[order]
        dot = sum(min(w, theirs.get(g, 0.0)) * theirs.get(g, 0.0) for g, w in hyp_weights[order].items())
        if hyp_norms[order] != 0 and ref_norms[order] != 0:
            dot /= hyp_norms[order] * ref_norms[order]
        values.append(dot * penalty)
    return values


def cider_d(hypotheses: Sequence[str], references: Sequence[Sequence[str]]) -> float:
    """Corpus CIDEr-D: the mean of :func:`cider_d_scores` (not × 100: COCO reports it as e.g. 1.05); 0 for no
    images. Arguments as :func:`cider_d_scores`'s."""
    scores = cider_d_scores(hypotheses, references)
    return sum(scores) / len(scores) if scores else 0.0
