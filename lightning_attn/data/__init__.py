"""Data: the built-in synthetic corpus, parallel text files, vocabularies, the DataModule."""

from .codec import BOS, EOS, PAD, UNK, Codec
from .parallel import DataError
from .translation import TranslationBatch, TranslationDataModule

__all__ = ["BOS", "EOS", "PAD", "UNK", "Codec", "DataError", "TranslationBatch", "TranslationDataModule"]
