"""Text <-> token ids, on top of Hugging Face ``tokenizers``.

One class for both vocabularies the project uses: word level for the built-in corpus, BPE for
real text (trained on the train split, cached as ``tokenizer.json``). Ids 0-3 are always
``<pad> <s> </s> <unk>``, so models never need to know which kind they got.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path

from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers

SPECIALS = ["<pad>", "<s>", "</s>", "<unk>"]
PAD, BOS, EOS, UNK = range(4)


class Codec:
    """Encodes sentences to id lists (without ``<s>``/``</s>``) and decodes ids back to text."""

    def __init__(self, tokenizer: Tokenizer):
        for i, tok in enumerate(SPECIALS):
            if tokenizer.token_to_id(tok) != i:
                raise ValueError(f"tokenizer must map {tok} to id {i}")
        self.tokenizer = tokenizer

    @classmethod
    def word_level(cls, sentences: Iterable[str], min_count: int = 1) -> Codec:
        """A whitespace word vocabulary; words seen fewer than ``min_count`` times become ``<unk>``."""
        tok = Tokenizer(models.WordLevel(unk_token="<unk>"))
        tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
        tok.train_from_iterator(sentences, trainers.WordLevelTrainer(special_tokens=SPECIALS, min_frequency=min_count))
        return cls(tok)

    @classmethod
    def bpe(cls, sentences: Iterable[str], vocab_size: int, lowercase: bool = False) -> Codec:
        """A reversible subword vocabulary: BPE over Metaspace words (``▁`` marks a word start)."""
        tok = Tokenizer(models.BPE(unk_token="<unk>"))
        norm = [normalizers.NFKC()] + ([normalizers.Lowercase()] if lowercase else [])
        tok.normalizer = normalizers.Sequence(norm)
        tok.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.Metaspace(), pre_tokenizers.Punctuation()])
        tok.decoder = decoders.Metaspace()
        trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=SPECIALS, show_progress=False)
        tok.train_from_iterator(sentences, trainer)
        return cls(tok)

    @classmethod
    def load(cls, path: str | Path) -> Codec:
        return cls(Tokenizer.from_file(str(path)))

    def save(self, path: str | Path) -> None:
        """Write atomically: a reader never sees a half-written vocabulary."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
        os.close(fd)
        try:
            self.tokenizer.save(tmp)
            os.replace(tmp, path)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)

    def __len__(self) -> int:
        return self.tokenizer.get_vocab_size()

    def encode(self, sentences: Sequence[str]) -> list[list[int]]:
        return [enc.ids for enc in self.tokenizer.encode_batch(list(sentences), add_special_tokens=False)]

    def token(self, i: int) -> str:
        """The vocabulary entry of id ``i`` as it is (a subword keeps its ``▁``), for pictures and tables."""
        return self.tokenizer.id_to_token(i) or "<unk>"

    def decode(self, ids: Sequence[int]) -> str:
        """Text of ``ids`` up to the first ``</s>``, special tokens dropped."""
        ids = list(ids)
        if EOS in ids:
            ids = ids[: ids.index(EOS)]
        return self.tokenizer.decode(ids, skip_special_tokens=True)
