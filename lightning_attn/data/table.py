"""Parallel text as a table, one file per split: TSV, CSV or JSON Lines (each may be gzipped), a source and a
target column (or field) named in the config. A validation or test split without a file is carved from the
training file with a fixed seed, and the sizes are said in one line.

A row that cannot be read stops everything before training, in one line naming the file, the line and the fault.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import logging
import random
from collections.abc import Callable
from dataclasses import dataclass
from itertools import repeat
from pathlib import Path

from omegaconf import MISSING

from .codec import Codec
from .parallel import cached_bpe, non_empty
from .source import DataError, TextPairSource, Texts

log = logging.getLogger(__name__)

FORMATS = {".tsv": "tsv", ".tab": "tsv", ".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl"}
SPLITS = ("train", "val", "test")


@dataclass
class FieldsConfig:
    """What sources of sentence pairs in named fields share: the fields, carving, vocabularies and batches."""

    src_field: str = "src"  # the source sentence's column (TSV/CSV header) or field (JSON)
    tgt_field: str = "tgt"
    carve_share: float = 0.05  # of the training pairs, for each split carved from them (at least one pair)
    carve_seed: int = 0
    bpe_vocab_size: int = 8000
    lowercase: bool = False
    max_train_len: int = 60  # drop training pairs longer than this many subwords on either side
    cache_dir: str | None = None  # vocabulary cache; default: next to the data, else ~/.cache
    batch_size: int = 64  # sentences per batch (when batch_tokens is 0)
    batch_tokens: int = 0  # > 0: batches of similar-length pairs up to this many padded tokens a side
    num_workers: int = 0


@dataclass
class TableDataConfig(FieldsConfig):
    """Sentence pairs in a TSV, CSV or JSON Lines file per split (``.gz`` too); TSV and CSV files have a header."""

    kind: str = "table"
    train: str = MISSING  # the training file
    val: str | None = None  # None: carved from the training file
    test: str | None = None  # None: carved from the training file


def table_format(path: Path) -> str:
    """``tsv``, ``csv`` or ``jsonl``, from the file's name (before a ``.gz``)."""
    suffix = Path(path.name.removesuffix(".gz")).suffix.lower()
    if suffix not in FORMATS:
        raise DataError(f"{path}: a table file ends in {', '.join(FORMATS)} (or one of them and .gz)")
    return FORMATS[suffix]


def read_table(path: Path, src_field: str, tgt_field: str) -> tuple[list[str], list[str]]:
    """The (source, target) sentences of a table file; pairs with an empty side dropped (and counted in the log).

    Raises:
        DataError: the file cannot be read, or a row (named by its line) lacks a field or is malformed.
    """
    pairs = []
    for line, row in read_rows(path):
        pairs.append((field_of(path, line, row, src_field), field_of(path, line, row, tgt_field)))
    return non_empty(pairs, path)


def read_rows(path: Path) -> list[tuple[int, dict]]:
    """``(line, row)`` of every row of a table file (TSV, CSV with a header, JSON Lines; ``.gz`` too).

    Raises:
        DataError: the file cannot be read, or a row (named by its line) is malformed.
    """
    kind = table_format(path)
    try:
        raw = gzip.decompress(path.read_bytes()) if path.name.endswith(".gz") else path.read_bytes()
        text = raw.decode("utf-8")
    except FileNotFoundError:
        raise DataError(f"missing data file: {path}") from None
    except (OSError, EOFError) as e:
        raise DataError(f"{path}: cannot read ({e})") from None
    except UnicodeDecodeError as e:
        line = raw[: e.start].count(b"\n") + 1
        raise DataError(f"{path}:{line}: not UTF-8 ({e.reason} at byte {e.start})") from None
    return _json_rows(path, text) if kind == "jsonl" else _delimited_rows(path, text, "\t" if kind == "tsv" else ",")


def field_of(path: Path, line: int, row: dict, name: str) -> str:
    """Row ``row``'s ``name`` column or field, stripped; a row without it is a DataError naming file and line."""
    if name not in row:
        kind = "field" if table_format(path) == "jsonl" else "column"
        raise DataError(f"{path}:{line}: no {name!r} {kind}")
    return str(row[name] or "").strip()


def _json_rows(path: Path, text: str) -> list[tuple[int, dict]]:
    rows = []
    for line, content in enumerate(text.splitlines(), start=1):
        if not content.strip():
            continue
        try:
            row = json.loads(content)
        except json.JSONDecodeError as e:
            raise DataError(f"{path}:{line}: not JSON ({e.msg} at column {e.colno})") from None
        if not isinstance(row, dict):
            raise DataError(f"{path}:{line}: a JSON object per line, not {type(row).__name__}")
        rows.append((line, row))
    return rows


def _delimited_rows(path: Path, text: str, delimiter: str) -> list[tuple[int, dict]]:
    quoting = csv.QUOTE_NONE if delimiter == "\t" else csv.QUOTE_MINIMAL
    reader = csv.reader(io.StringIO(text), delimiter=delimiter, quoting=quoting, strict=True)
    try:
        header = next(reader)
        rows = []
        for values in reader:
            if not values:
                continue
            if len(values) != len(header):
                raise DataError(f"{path}:{reader.line_num}: {len(values)} columns, the header has {len(header)}")
            rows.append((reader.line_num, dict(zip(header, values))))
    except StopIteration:
        raise DataError(f"{path}: empty (a header row, then a row per entry)") from None
    except csv.Error as e:
        raise DataError(f"{path}:{reader.line_num}: {e}") from None
    return rows


def carve(n: int, names: list[str], *, share: float, seed: int, where: str, unit: str) -> dict[str, list[int]]:
    """Positions ``0 … n-1`` of a file's items dealt into the splits ``names`` (``share`` of them each, at least
    one), drawn with ``seed``, and ``train`` (the rest), each in file order; the sizes said in one line (``unit``:
    what an item is, ``where``: the file).

    Raises:
        DataError: too few items to leave some for training.
    """
    order = list(range(n))
    random.Random(seed).shuffle(order)
    size = max(1, round(share * n))
    if size * len(names) >= n:
        raise DataError(f"{where}: {n} {unit} are too few to carve {' and '.join(names)} from them")
    dealt = {name: sorted(order[i * size : (i + 1) * size]) for i, name in enumerate(names)}
    dealt["train"] = sorted(order[len(names) * size :])
    sizes = ", ".join(f"{name} {len(dealt[name])}" for name in ("train", *names))
    log.warning("%s carved from %s with seed %d: %s %s", " and ".join(names), where, seed, sizes, unit)
    return dealt


def field_vocabularies(
    cfg: dict, texts: dict[str, Texts], root: Path, train: Path | None, *, name: Callable[[str], str], digest: str = ""
) -> tuple[Codec, Codec]:
    """The source and target BPE vocabularies of a fields source's training split, each trained once and cached
    (:func:`~.parallel.cached_bpe`) under ``name(field)``, keyed by the ``train`` file or the ``digest`` of the data."""
    train_src, train_tgt, _ = texts["train"]
    return tuple(
        cached_bpe(
            root,
            lines,
            train,
            lang=name(field),
            vocab_size=cfg["bpe_vocab_size"],
            lowercase=cfg["lowercase"],
            cache_dir=cfg["cache_dir"],
            digest=digest or None,
        )
        for lines, field in ((train_src, cfg["src_field"]), (train_tgt, cfg["tgt_field"]))
    )


class TableSource(TextPairSource):
    """Sentence pairs in a TSV, CSV or JSON Lines file per split; subword (BPE) vocabularies trained on the
    training split once and cached."""

    schema = TableDataConfig

    def path(self, split: str) -> Path | None:
        given = self.cfg[split]
        return Path(given).expanduser() if given else None

    @property
    def location(self) -> str:
        return str(self.path("train"))

    def read(self) -> dict[str, Texts]:
        c = self.cfg
        texts = {"train": self._file("train")}
        src, tgt, _ = texts["train"]
        missing = [split for split in SPLITS[1:] if self.path(split) is None]
        if missing:
            dealt = carve(
                len(src), missing, share=c["carve_share"], seed=c["carve_seed"], where=self.location, unit="pairs"
            )
            texts = {name: ([src[i] for i in at], [tgt[i] for i in at], repeat(None)) for name, at in dealt.items()}
        for split in SPLITS[1:]:
            if split not in missing:
                texts[split] = self._file(split)
        return texts

    def _file(self, split: str) -> Texts:
        """The split's own file."""
        return (*read_table(self.path(split), self.cfg["src_field"], self.cfg["tgt_field"]), repeat(None))

    def vocabularies(self, texts: dict[str, Texts]) -> tuple[Codec, Codec]:
        c, train = self.cfg, self.path("train")
        carved = "" if c["val"] and c["test"] else f"-carved{c['carve_share']}-{c['carve_seed']}"  # other lines
        return field_vocabularies(c, texts, train.parent, train, name=lambda field: f"{field}{carved}")

    def evaluation(self, split: str | None) -> tuple[str, Texts]:
        name = split or "test"
        if name not in SPLITS:
            raise DataError(f"no split {name!r} here; choose one of: {', '.join(SPLITS)}")
        if name == "train" or self.path(name) is None:  # the training file, or carved from it
            return name, self.read()[name]
        return name, self._file(name)
