"""The built-in translation corpus: a small synthetic language pair generated from a seed.

Source (English-like, SVO, adjectives before the noun)::

    the big red dog near a cat sees some small birds today

Target (SOV, adjectives after the noun, agreement in gender and number)::

    lo dogu grandu rossu vicin una gata mira alcune birde piccole oggi vedonu

What makes it a translation task that needs attention:

* **reordering** — the verb moves to the end, adjectives move behind their noun, the adverb
  moves before the verb, so the output order is not the input order;
* **agreement** — every noun has a grammatical gender that exists only in the target; determiners
  and adjectives take the noun's gender and number, and the verb agrees with the subject in both,
  so a target word depends on a source word that can be far away;
* **a large open vocabulary** — many nouns/adjectives/verbs, so a fixed-size summary of the source
  (the ``uniform`` control) cannot hold every word of a long sentence.

Every target token records its **gold alignment**: the index of the source token it translates.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from .codec import Codec
from .source import DataError, TextPairSource, Texts

# Source lexicon. Target words are derived from the source lemma so that the target stays readable.
NOUNS = (
    "dog cat bird horse cow fish mouse frog lion tiger bear wolf fox goat duck snake rabbit "
    "king queen child farmer doctor teacher baker sailor pilot singer painter student "
    "tree flower stone river house car boat train book lamp chair table door window garden apple "
    "bottle basket ladder mirror candle drum flag kite ring hat coat shoe"
).split()
ADJECTIVES = (
    "big small red blue green old young happy sad tall short heavy light quick slow bright dark "
    "warm cold quiet loud clean dirty round soft hard strange gentle proud clever"
).split()
VERBS = (
    "see like follow find carry paint watch help push pull draw hold greet call chase visit "
    "wash feed hide catch lift kick meet love"
).split()
ADVERBS = "today often never again slowly quickly there here now later".split()
PREPOSITIONS = {"near": "vicin", "behind": "dietr", "under": "sott", "beside": "accant", "above": "sopr"}

# Target morphology: gender (m/f) x number (sg/pl).
DEFINITE = {("m", "sg"): "lo", ("f", "sg"): "la", ("m", "pl"): "li", ("f", "pl"): "le"}
INDEFINITE = {("m", "sg"): "uno", ("f", "sg"): "una", ("m", "pl"): "alcuni", ("f", "pl"): "alcune"}
ADJ_SUFFIX = {("m", "sg"): "u", ("f", "sg"): "a", ("m", "pl"): "i", ("f", "pl"): "e"}
VERB_SUFFIX = {("m", "sg"): "enu", ("f", "sg"): "ena", ("m", "pl"): "onu", ("f", "pl"): "ona"}


def _noun_gender(noun: str) -> str:
    # Fixed per word, unguessable from the source spelling's last letter alone.
    return "f" if sum(map(ord, noun)) % 2 else "m"


def _plural(noun: str) -> str:
    # Every plural differs from its singular: the source must show the number the target inflects for.
    irregular = {"mouse": "mice", "child": "children"}
    if noun in irregular:
        return irregular[noun]
    return noun + ("es" if noun.endswith(("s", "sh", "ch", "x")) else "s")


def _stem(word: str) -> str:
    """Target stem of a source lemma: a deterministic respelling (readable, not a copy)."""
    table = str.maketrans({"c": "k", "w": "v", "y": "i", "q": "k", "x": "s", "h": ""})
    stem = word.translate(table)
    return stem[:-1] if stem[-1] in "aeiou" and len(stem) > 3 else stem


@dataclass
class SyntheticDataConfig:
    """The built-in synthetic language pair (see :mod:`lightning_attn.data.synthetic`)."""

    kind: str = "synthetic"
    n_train: int = 20000
    n_val: int = 500
    n_test: int = 1000
    corpus_seed: int = 1234  # the corpus is the same whatever the training seed
    max_adjectives: int = 3
    p_prepositional: float = 0.8  # long sentences (15.7 source words on average) defeat the uniform control
    p_adverb: float = 0.5
    lexicon_share: float = 1.0  # the share of each word list used: a smaller vocabulary is a smaller task
    batch_size: int = 64
    batch_tokens: int = 0  # > 0: length-bucketed batches of up to this many padded tokens (see ParallelDataConfig)
    num_workers: int = 0  # data lives in memory: worker processes only add start-up time


@dataclass(frozen=True)
class Example:
    """One sentence pair.

    Attributes:
        source: source tokens.
        target: target tokens.
        alignment: for each target token, the index of the source token it translates.
    """

    source: tuple[str, ...]
    target: tuple[str, ...]
    alignment: tuple[int, ...]


@dataclass(frozen=True)
class Lexicon:
    """The source words a corpus draws from."""

    nouns: tuple[str, ...]
    adjectives: tuple[str, ...]
    verbs: tuple[str, ...]
    adverbs: tuple[str, ...]

    @classmethod
    def share(cls, fraction: float) -> Lexicon:
        """The first ``fraction`` of each word list (at least two words each): a smaller task to learn."""
        if not 0 < fraction <= 1:
            raise ValueError(f"lexicon_share must lie in (0, 1], got {fraction}")

        def cut(words: list[str]) -> tuple[str, ...]:
            return tuple(words[: max(2, round(len(words) * fraction))])

        return cls(cut(NOUNS), cut(ADJECTIVES), cut(VERBS), cut(ADVERBS))


@dataclass
class _Phrase:
    src: list[str]
    tgt: list[tuple[str, int]]  # (target token, index into src of this phrase)


def _noun_phrase(
    rng: random.Random, lex: Lexicon, max_adjectives: int, p_pp: float, depth: int = 0
) -> tuple[_Phrase, str, str]:
    noun = rng.choice(lex.nouns)
    number = rng.choice(("sg", "pl"))
    gender = _noun_gender(noun)
    definite = rng.random() < 0.5
    adjectives = rng.sample(lex.adjectives, min(len(lex.adjectives), rng.randint(0, max_adjectives)))
    det_src = "the" if definite else ("a" if number == "sg" else "some")
    src = [det_src, *adjectives, noun if number == "sg" else _plural(noun)]
    det_tgt = (DEFINITE if definite else INDEFINITE)[(gender, number)]
    noun_tgt = _stem(noun) + ("a" if gender == "f" else "o") + ("" if number == "sg" else "s")
    # DET NOUN ADJ* : adjectives follow the noun and agree with it
    tgt = [(det_tgt, 0), (noun_tgt, len(src) - 1)]
    tgt += [(_stem(adj) + ADJ_SUFFIX[(gender, number)], 1 + i) for i, adj in enumerate(adjectives)]
    if depth == 0 and rng.random() < p_pp:
        prep = rng.choice(sorted(PREPOSITIONS))
        inner, _, _ = _noun_phrase(rng, lex, max_adjectives, p_pp, depth + 1)
        offset = len(src) + 1
        tgt.append((PREPOSITIONS[prep], len(src)))
        tgt += [(tok, offset + i) for tok, i in inner.tgt]
        src += [prep, *inner.src]
    return _Phrase(src, tgt), gender, number


def _sentence(rng: random.Random, lex: Lexicon, max_adjectives: int, p_pp: float, p_adverb: float) -> Example:
    subject, gender, number = _noun_phrase(rng, lex, max_adjectives, p_pp)
    obj, _, _ = _noun_phrase(rng, lex, max_adjectives, p_pp)
    verb = rng.choice(lex.verbs)
    verb_src = verb if number == "pl" else (verb + "es" if verb.endswith(("sh", "ch", "s")) else verb + "s")
    adverb = rng.choice(lex.adverbs) if rng.random() < p_adverb else None
    # Source: S V O [ADV]
    src = subject.src + [verb_src] + obj.src + ([adverb] if adverb else [])
    verb_pos = len(subject.src)
    obj_off = verb_pos + 1
    # Target: S O [ADV] V, the verb agreeing with the subject's gender and number
    tgt = list(subject.tgt) + [(t, obj_off + i) for t, i in obj.tgt]
    if adverb:
        tgt.append((_stem(adverb) + "e", len(src) - 1))
    tgt.append((_stem(verb) + VERB_SUFFIX[(gender, number)], verb_pos))
    return Example(tuple(src), tuple(t for t, _ in tgt), tuple(i for _, i in tgt))


def generate_corpus(config: SyntheticDataConfig) -> dict[str, list[Example]]:
    """Generate disjoint train/val/test splits of distinct sentence pairs, deterministically from
    ``config.corpus_seed`` (independent of the training seed).

    The config's ``n_train``/``n_val``/``n_test`` give the split sizes; ``max_adjectives`` (adjectives per
    noun phrase), ``p_prepositional`` (a noun phrase carries a prepositional phrase), ``p_adverb`` (a
    sentence-final adverb) and ``lexicon_share`` (the share of each word list drawn from) the difficulty.
    """
    c = config
    n_train, n_val, n_test = c.n_train, c.n_val, c.n_test
    max_adjectives, p_prepositional, p_adverb = c.max_adjectives, c.p_prepositional, c.p_adverb
    seed = c.corpus_seed
    rng = random.Random(seed)
    lex = Lexicon.share(c.lexicon_share)
    wanted = n_train + n_val + n_test
    seen: set[tuple[str, ...]] = set()
    examples: list[Example] = []
    attempts = 0
    while len(examples) < wanted:
        attempts += 1
        if attempts > 20 * wanted + 1000:
            raise ValueError(
                f"cannot generate {wanted} distinct sentences with these settings; "
                "lower the split sizes or raise max_adjectives, p_prepositional or lexicon_share"
            )
        example = _sentence(rng, lex, max_adjectives, p_prepositional, p_adverb)
        if example.source not in seen:
            seen.add(example.source)
            examples.append(example)
    return {
        "train": examples[:n_train],
        "val": examples[n_train : n_train + n_val],
        "test": examples[n_train + n_val :],
    }


class SyntheticSource(TextPairSource):
    """The built-in synthetic language pair, generated in memory (word-level vocabularies; gold alignments)."""

    schema = SyntheticDataConfig
    builtin = True

    def read(self) -> dict[str, Texts]:
        corpus = generate_corpus(SyntheticDataConfig(**self.cfg))
        return {
            split: (
                [" ".join(e.source) for e in examples],
                [" ".join(e.target) for e in examples],
                [list(e.alignment) for e in examples],
            )
            for split, examples in corpus.items()
        }

    def vocabularies(self, texts: dict[str, Texts]) -> tuple[Codec, Codec]:
        src, tgt, _ = texts["train"]
        return Codec.word_level(src), Codec.word_level(tgt)

    def evaluation(self, split: str | None) -> tuple[str, Texts]:
        texts, name = self.read(), split or "test"
        if name not in texts:
            raise DataError(f"the built-in corpus has no split {name!r}; choose one of: {', '.join(texts)}")
        return name, texts[name]
