"""Parallel text through Hugging Face ``datasets`` (the optional ``[hf]`` extra): a folder written by
``save_to_disk`` (a ``DatasetDict`` of splits, or one ``Dataset``), or local JSON / JSON Lines / CSV / Parquet
files, read without a network. The source and target are columns, or fields of a column (``translation.de``,
as translation datasets nest them). A validation or test split the data lacks is carved from the training
split with a fixed seed, and the sizes are said in one line.

A row without its sentence stops everything before training, in one line naming the data, split, row and field.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from itertools import repeat
from pathlib import Path
from typing import Any

from omegaconf import MISSING

from .codec import Codec
from .parallel import non_empty
from .source import DataError, TextPairSource, Texts
from .table import SPLITS, FieldsConfig, carve, field_vocabularies

#: data files ``datasets`` reads, by extension: its packaged builder
BUILDERS = {".json": "json", ".jsonl": "json", ".csv": "csv", ".parquet": "parquet"}


@dataclass
class HFDataConfig(FieldsConfig):
    """Sentence pairs through Hugging Face ``datasets``: a ``save_to_disk`` folder or local data files; the fields
    may name a column's field (``translation.de``)."""

    kind: str = "hf"
    path: str = MISSING  # a save_to_disk folder, or the training split's file(s): .json/.jsonl/.csv/.parquet, a glob
    val: str | None = None  # with files: the validation split's file(s); None: the folder's split, else carved
    test: str | None = None  # likewise for the test split
    train_split: str = "train"  # a folder's split names
    val_split: str = "validation"
    test_split: str = "test"


def _datasets() -> Any:
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")  # local data only: nothing is fetched at run time
    try:
        import datasets
    except ImportError:
        raise DataError("data=hf needs Hugging Face datasets: pip install 'lightning-attn[hf]'") from None
    datasets.disable_progress_bars()
    return datasets


def load_splits(given: str, files: dict[str, str | None]) -> dict[str, Any]:
    """``{split name: Dataset}`` from a ``save_to_disk`` folder (its splits; one ``Dataset`` is ``train``), or from
    data files (``train``: ``given``, the others as ``files`` names them).

    Raises:
        DataError: nothing there, or ``datasets`` cannot read it (one line).
    """
    datasets = _datasets()
    path = Path(given).expanduser()
    try:
        if path.is_dir() and any((path / f).is_file() for f in ("dataset_dict.json", "state.json")):
            loaded = datasets.load_from_disk(str(path))
            return dict(loaded) if isinstance(loaded, datasets.DatasetDict) else {"train": loaded}
        found = {"train": given, **{k: v for k, v in files.items() if v}}
        out = {}
        for split, pattern in found.items():
            suffix = Path(pattern).suffix.lower()
            if suffix not in BUILDERS:
                raise DataError(f"{pattern}: not a save_to_disk folder nor a {', '.join(BUILDERS)} file")
            out[split] = datasets.load_dataset(BUILDERS[suffix], data_files=pattern, split="train")
        return out
    except FileNotFoundError as e:
        raise DataError(f"data.path: nothing to read at {e.filename or given}") from None
    except (datasets.exceptions.DatasetGenerationError, ValueError, OSError) as e:
        raise DataError(f"{given}: datasets cannot read it ({str(e).splitlines()[0]})") from None


def column(dataset: Any, field: str, where: str) -> list[str]:
    """The sentences of ``field`` (a column, or ``column.field`` into nested records), stripped.

    Raises:
        DataError: no such column or field, or a row without a sentence (named by its index).
    """
    flat = dataset.flatten() if "." in field else dataset
    if field not in flat.column_names:
        raise DataError(f"{where}: no {field!r} column; it has {', '.join(flat.column_names)}")
    values = flat[field]
    for row, value in enumerate(values):
        if not isinstance(value, str):
            raise DataError(f"{where} row {row}: {field!r} is {type(value).__name__}, not a sentence")
    return [v.strip() for v in values]


class HFSource(TextPairSource):
    """Sentence pairs through Hugging Face ``datasets``; subword (BPE) vocabularies trained on the training split
    once and cached."""

    schema = HFDataConfig

    @property
    def location(self) -> str:
        return str(Path(self.cfg["path"]).expanduser())

    def read(self) -> dict[str, Texts]:
        c = self.cfg
        loaded = load_splits(c["path"], {"val": c["val"], "test": c["test"]})
        names = {"train": c["train_split"], "val": c["val_split"], "test": c["test_split"]}
        # a folder's split names, or (data files) ours
        names = {ours: theirs if theirs in loaded or ours == "train" else ours for ours, theirs in names.items()}
        if names["train"] not in loaded:
            raise DataError(f"{self.location}: no {c['train_split']!r} split; it has {', '.join(loaded)}")
        texts = {ours: self._pairs(loaded[theirs], theirs) for ours, theirs in names.items() if theirs in loaded}
        missing = [split for split in SPLITS[1:] if split not in texts]
        if missing:
            src, tgt, _ = texts["train"]
            at = carve(
                len(src), missing, share=c["carve_share"], seed=c["carve_seed"], where=self.location, unit="pairs"
            )
            texts |= {name: ([src[i] for i in rows], [tgt[i] for i in rows], repeat(None)) for name, rows in at.items()}
        return texts

    def _pairs(self, dataset: Any, split: str) -> Texts:
        where = f"{self.location} [{split}]"
        pairs = zip(column(dataset, self.cfg["src_field"], where), column(dataset, self.cfg["tgt_field"], where))
        return (*non_empty(list(pairs), Path(where)), repeat(None))

    def vocabularies(self, texts: dict[str, Texts]) -> tuple[Codec, Codec]:
        train_src, train_tgt, _ = texts["train"]
        root = Path(self.location)
        digest = hashlib.sha256("\n".join(train_src + train_tgt).encode()).hexdigest()[:12]
        where = root if root.is_dir() else root.parent
        return field_vocabularies(self.cfg, texts, where, None, name=lambda field: f"hf-{field}", digest=digest)

    def evaluation(self, split: str | None) -> tuple[str, Texts]:
        name = split or "test"
        if name not in SPLITS:
            raise DataError(f"no split {name!r} here; choose one of: {', '.join(SPLITS)}")
        return name, self.read()[name]
