"""Data: built-in corpora (a synthetic language pair, digit scenes), file formats (parallel text, Karpathy
JSON), vocabularies, DataModules.

:data:`DATA` is the data registry: ``kind`` (what ``conf/data/*.yaml`` names) -> its config schema; the
task's DataModule (see :data:`lightning_attn.tasks.TASKS`) reads any kind its task accepts.
"""

from .codec import BOS, EOS, PAD, UNK, Codec
from .digits import DigitsDataConfig
from .karpathy import KarpathyDataConfig
from .parallel import DataError, ParallelDataConfig
from .synthetic import SyntheticDataConfig
from .translation import TranslationBatch, TranslationDataModule

DATA: dict[str, type] = {
    "synthetic": SyntheticDataConfig,
    "parallel": ParallelDataConfig,
    "digits": DigitsDataConfig,
    "karpathy": KarpathyDataConfig,
}

__all__ = [
    "BOS",
    "DATA",
    "EOS",
    "PAD",
    "UNK",
    "Codec",
    "DataError",
    "DigitsDataConfig",
    "KarpathyDataConfig",
    "ParallelDataConfig",
    "SyntheticDataConfig",
    "TranslationBatch",
    "TranslationDataModule",
]
