"""lightning_attn.cider is the coco-caption CIDEr-D: equal to pycocoevalcap's scorer (where the dev extra
installed it) on random and on real-looking captions, and right on cases small enough to work out by hand."""

from __future__ import annotations

import math
import random

import pytest

from lightning_attn.cider import cider_d, cider_d_scores, ngram_counts

# real-looking: COCO-style references (already tokenised and lowercased, as Karpathy's JSON has them) and the
# built-in scenes' captions, with hypotheses a model might produce — right, partly right, wrong, empty
COCO_REFS = [
    [
        "a man riding a wave on top of a surfboard",
        "a surfer rides a large wave in the ocean",
        "a person on a surf board riding a wave",
        "a man surfing on a big wave",
        "surfer riding a wave",
    ],
    [
        "two dogs playing with a frisbee in the grass",
        "a couple of dogs running after a frisbee",
        "two brown dogs play in a field",
        "dogs chasing a frisbee on a lawn",
    ],
    [
        "a plate of food with broccoli and rice",
        "a white plate topped with rice and vegetables",
        "rice and broccoli on a dinner plate",
    ],
    [
        "a red double decker bus driving down a street",
        "a bus on a city street",
        "a large red bus on the road",
        "the double decker bus is red",
        "a city bus drives past buildings",
    ],
    ["a cat sitting on a laptop keyboard", "a cat lying on a computer"],
    ["seven top left , two bottom right", "two bottom right , seven top left"],
    ["nine top right"],
]
COCO_HYPS = [
    "a man riding a wave on a surfboard",
    "two dogs playing with a frisbee",
    "a plate of food",
    "a red bus driving down a street",
    "",
    "seven top left , two bottom right",
    "nine",
]


def _reference_scores(hypotheses: list[str], references: list[list[str]]) -> tuple[float, list[float]]:
    from pycocoevalcap.cider.cider import Cider

    score, scores = Cider().compute_score(dict(enumerate(references)), {i: [h] for i, h in enumerate(hypotheses)})
    return float(score), [float(s) for s in scores]


def _random_captions(rng: random.Random, images: int) -> tuple[list[str], list[list[str]]]:
    vocabulary = "a the man dog cat on in with red blue top left right bottom , . riding sitting".split()

    def caption(longest: int) -> str:
        return " ".join(rng.choice(vocabulary) for _ in range(rng.randint(0, longest)))

    references = [[caption(14) or "a" for _ in range(rng.randint(1, 5))] for _ in range(images)]
    hypotheses = []
    for refs in references:  # some copy a reference, some share a few of its words, some are noise
        kind = rng.random()
        words = rng.choice(refs).split()
        if kind < 0.25:
            hypotheses.append(" ".join(words))
        elif kind < 0.6:
            hypotheses.append(" ".join(words[: rng.randint(0, len(words))] + caption(4).split()))
        else:
            hypotheses.append(caption(16))
    return hypotheses, references


@pytest.mark.parametrize("seed", range(6))
def test_equals_pycocoevalcap_on_random_captions(seed):
    pytest.importorskip("pycocoevalcap", reason="pycocoevalcap (the dev extra) is what this compares against")
    rng = random.Random(seed)
    hypotheses, references = _random_captions(rng, images=rng.choice([2, 3, 10, 60]))
    expected, expected_each = _reference_scores(hypotheses, references)
    assert cider_d_scores(hypotheses, references) == pytest.approx(expected_each, rel=1e-12, abs=1e-12)
    assert cider_d(hypotheses, references) == pytest.approx(expected, rel=1e-12, abs=1e-12)


def test_equals_pycocoevalcap_on_real_looking_captions():
    pytest.importorskip("pycocoevalcap", reason="pycocoevalcap (the dev extra) is what this compares against")
    expected, expected_each = _reference_scores(COCO_HYPS, COCO_REFS)
    assert cider_d_scores(COCO_HYPS, COCO_REFS) == pytest.approx(expected_each, rel=1e-12, abs=1e-12)
    assert cider_d(COCO_HYPS, COCO_REFS) == pytest.approx(expected, rel=1e-12, abs=1e-12)
    assert expected > 1.0  # not a comparison of zeros
    # one image alone: log N = 0, every weight and so the score is 0 — in both
    assert cider_d(COCO_HYPS[:1], COCO_REFS[:1]) == _reference_scores(COCO_HYPS[:1], COCO_REFS[:1])[0] == 0.0


def test_a_case_worked_out_by_hand():
    # N = 2 images, every reference n-gram in one image: each weight is tf · (log 2 − log 1).
    # Image 0 repeats its reference: cosine 1 for unigrams and bigrams, no 3- or 4-grams, equal lengths:
    # (1 + 1 + 0 + 0) / 4 × 10 = 5. Image 1 shares nothing with its reference: 0.
    assert cider_d_scores(["a b", "x"], [["a b"], ["c d"]]) == pytest.approx([5.0, 0.0])
    assert cider_d(["a b", "x"], [["a b"], ["c d"]]) == pytest.approx(2.5)
    # the length penalty: "a b c" against "a b c d e" is 2 bigrams shorter → exp(-4 / 72); its 1-, 2-, 3-gram
    # cosines with idf weights all log 2 are 3/√(3·5), 2/√(2·4), 1/√(1·3)
    got = cider_d_scores(["a b c", "z"], [["a b c d e"], ["y"]])[0]
    cosines = 3 / math.sqrt(15) + 2 / math.sqrt(8) + 1 / math.sqrt(3)
    assert got == pytest.approx(cosines / 4 * 10 * math.exp(-4 / 72))


def test_clipping_and_the_references_average():
    refs = [["a cat on a mat", "the cat"], ["a dog"]]
    # repeating a word does not raise its score (its count is clipped at the reference's)
    assert cider_d_scores(["cat cat cat cat", "dog"], refs)[0] <= cider_d_scores(["cat", "dog"], refs)[0]
    assert ngram_counts("a b a") == {("a",): 2, ("b",): 1, ("a", "b"): 1, ("b", "a"): 1, ("a", "b", "a"): 1}
    assert cider_d([], []) == 0.0
    with pytest.raises(ValueError, match="at least one reference"):
        cider_d(["a"], [[]])
    with pytest.raises(ValueError, match="1 hypotheses but 2"):
        cider_d(["a"], [["a"], ["b"]])
