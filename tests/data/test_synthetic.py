from __future__ import annotations

from lightning_attn.data.synthetic import ADJECTIVES, NOUNS, VERBS, SyntheticDataConfig, generate_corpus


def corpus(**kw):
    return generate_corpus(SyntheticDataConfig(n_train=200, n_val=20, n_test=20, corpus_seed=kw.pop("seed", 0), **kw))


def test_same_seed_same_corpus_other_seed_other_corpus():
    assert corpus() == corpus()
    assert corpus(seed=1)["train"] != corpus()["train"]


def test_splits_have_requested_sizes_and_are_disjoint():
    c = corpus()
    assert [len(c[s]) for s in ("train", "val", "test")] == [200, 20, 20]
    sources = [set(e.source for e in c[s]) for s in ("train", "val", "test")]
    assert not (sources[0] & sources[1]) and not (sources[0] & sources[2]) and not (sources[1] & sources[2])


def test_alignment_points_at_the_translated_word():
    for e in corpus()["train"]:
        assert len(e.alignment) == len(e.target)
        assert all(0 <= i < len(e.source) for i in e.alignment)
        for tgt, i in zip(e.target, e.alignment):
            src = e.source[i]
            if src in NOUNS or src in ADJECTIVES:
                # content words: the target stem is a respelling of the source word's start
                assert tgt[0] in (src[0], {"c": "k", "w": "v", "y": "i", "q": "k", "h": tgt[0]}.get(src[0]))


VERB_FORMS = {form for v in VERBS for form in (v, v + "s", v + "es")}


def test_target_reorders_the_source():
    for e in corpus()["train"]:
        # the verb (second constituent in the source) is the last target word
        assert e.source[e.alignment[-1]] in VERB_FORMS
        assert list(e.alignment) != sorted(e.alignment)


def test_adjectives_agree_with_the_noun():
    for e in corpus()["train"][:50]:
        # det (lo/la/li/le, uno/una, alcuni/alcune) and the adjectives that follow a noun share its ending class
        for j, tok in enumerate(e.target):
            if tok in ("lo", "uno"):
                assert e.target[j + 1].endswith("o")  # masculine singular noun


def test_difficulty_knobs_change_lengths():
    sizes = {"n_train": 300, "n_val": 1, "n_test": 1}
    short = generate_corpus(SyntheticDataConfig(**sizes, max_adjectives=0, p_prepositional=0.0, p_adverb=0.0))["train"]
    long = generate_corpus(SyntheticDataConfig(**sizes, max_adjectives=3, p_prepositional=1.0, p_adverb=1.0))["train"]
    assert max(len(e.source) for e in short) == 5
    assert min(len(e.source) for e in long) > 9
