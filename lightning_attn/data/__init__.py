"""Data: built-in corpora (a synthetic language pair, digit scenes), file formats (parallel text, tables —
TSV, CSV, JSON Lines — of sentence pairs or of image paths and captions, Karpathy JSON), vocabularies, DataModules.

:data:`DATA` is the data registry: ``kind`` (what ``conf/data/*.yaml`` names) -> its source class
(:mod:`.source`: the config schema and how the splits are read); a task's DataModule reads any kind of
the family its task takes.
"""

from .caption_table import CaptionTableDataConfig
from .codec import BOS, EOS, PAD, UNK, Codec
from .digits import DigitsDataConfig
from .karpathy import KarpathyDataConfig
from .parallel import ParallelDataConfig
from .registry import DATA
from .source import CaptionSource, DataError, DataSource, TextPairSource
from .synthetic import SyntheticDataConfig
from .table import TableDataConfig
from .translation import TranslationBatch, TranslationDataModule

__all__ = [
    "BOS",
    "DATA",
    "CaptionSource",
    "CaptionTableDataConfig",
    "DataSource",
    "TextPairSource",
    "EOS",
    "PAD",
    "UNK",
    "Codec",
    "DataError",
    "DigitsDataConfig",
    "KarpathyDataConfig",
    "ParallelDataConfig",
    "SyntheticDataConfig",
    "TableDataConfig",
    "TranslationBatch",
    "TranslationDataModule",
]
