"""The data registry: ``kind`` (what ``conf/data/*.yaml`` names) -> its source class (:mod:`.source`).

A task reads the kinds its task class lists (``AttentionTask.sources``); a plugin adds a kind with
``DATA.register(kind, source_class)``.
"""

from __future__ import annotations

from ..registry import Registry
from .caption_table import CaptionTableSource
from .digits import DigitsSource
from .hf import HFSource
from .karpathy import KarpathySource
from .parallel import ParallelSource
from .source import DataError, DataSource
from .synthetic import SyntheticSource
from .table import TableSource

DATA: Registry[type[DataSource]] = Registry(
    "data kind",
    {
        "synthetic": SyntheticSource,
        "parallel": ParallelSource,
        "table": TableSource,
        "hf": HFSource,
        "digits": DigitsSource,
        "karpathy": KarpathySource,
        "caption_table": CaptionTableSource,
    },
)


def source_for(cfg: dict, family: type[DataSource]) -> DataSource:
    """The source the ``data`` section names, which must be of ``family`` (a task's kind of data).

    Raises:
        DataError: an unknown kind, or one of another family.
    """
    kind = cfg["kind"]
    source = DATA.get(kind)
    if source is None or not issubclass(source, family):
        accepted = ", ".join(k for k, s in DATA.items() if issubclass(s, family))
        raise DataError(f"data kind {kind!r} is not {family.__name__} data; choose one of: {accepted}")
    return source(cfg)
