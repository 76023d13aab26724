"""On-disk caches: where they live, and arrays read one row at a time.

A COCO-size image set (123 k images) decoded at 128 px is 6 GB of uint8 — more as float32. So images
are decoded once into a :class:`RowFile` on disk (and, optionally, a frozen encoder's grid features are
extracted once into another), and training reads the rows its batches need. Rows are read with
``os.pread``, not through a memory map: the pages stay in the operating system's file cache, which it
shares and evicts as memory requires, instead of accumulating in the resident set of every process
that has touched them.

A cache is complete only when its metadata file exists: the rows are written to a temporary file,
renamed into place, and the metadata (which also names the key the cache was built for) is written
last, atomically. An interrupted build leaves nothing that looks complete.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np


def cache_folder(beside: Path, configured: str | None = None) -> Path:
    """Where caches for data under ``beside`` live: ``configured`` if given, else a ``.lightning_attn_cache``
    folder next to the data, else (read-only data) a folder in the user's cache named after the data's path."""
    if configured:
        return Path(configured).expanduser()
    next_to_data = beside / ".lightning_attn_cache"
    if os.access(next_to_data if next_to_data.exists() else beside, os.W_OK):
        return next_to_data
    key = hashlib.sha256(str(beside.resolve()).encode()).hexdigest()[:12]
    base = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    return base / "lightning_attn" / key


def digest(*parts: Any) -> str:
    """A short stable key of JSON-serialisable parts (what a cache was built from)."""
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:16]


def write_json_atomic(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(data, f)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


class RowFile:
    """``rows x row_shape`` values of one dtype in a flat file, read a row at a time.

    Picklable: DataLoader workers each open their own file descriptor on first use.
    """

    def __init__(self, path: Path, rows: int, row_shape: Sequence[int], dtype: str, meta: dict | None = None):
        self.path = Path(path)
        self.rows = rows
        self.row_shape = tuple(row_shape)
        self.dtype = np.dtype(dtype)
        self.meta = meta or {}
        self.row_bytes = int(np.prod(self.row_shape)) * self.dtype.itemsize
        self._fd: int | None = None
        self._pid: int | None = None

    @staticmethod
    def meta_path(path: Path) -> Path:
        return path.with_name(path.name + ".json")

    @classmethod
    def open(cls, path: Path, key: str) -> RowFile | None:
        """The complete cache at ``path`` built for ``key``, else ``None``."""
        meta_path = cls.meta_path(path)
        try:
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        if meta.get("key") != key or not path.is_file():
            return None
        store = cls(path, meta["rows"], meta["row_shape"], meta["dtype"], meta)
        if path.stat().st_size != store.rows * store.row_bytes:
            return None
        return store

    def __len__(self) -> int:
        return self.rows

    def __getitem__(self, row: int) -> np.ndarray:
        if not 0 <= row < self.rows:
            raise IndexError(f"row {row} of {self.rows} in {self.path}")
        if self._fd is None or self._pid != os.getpid():
            self._fd, self._pid = os.open(self.path, os.O_RDONLY), os.getpid()
        raw = os.pread(self._fd, self.row_bytes, row * self.row_bytes)
        return np.frombuffer(raw, dtype=self.dtype).reshape(self.row_shape)

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_fd": None, "_pid": None}

    def __del__(self):
        if self._fd is not None and self._pid == os.getpid():
            os.close(self._fd)


class RowFileWriter:
    """Writes a :class:`RowFile` row by row; :meth:`commit` makes it complete, anything else leaves no trace.

    ::

        with RowFileWriter(path, (S, S, 3), "uint8") as out:
            for image in images:
                out.append(image)
            store = out.commit(key, extra={"paths": [...]})
    """

    def __init__(self, path: Path, row_shape: Sequence[int], dtype: str):
        self.path = Path(path)
        self.row_shape = tuple(row_shape)
        self.dtype = np.dtype(dtype)
        self.rows = 0
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, self.tmp = tempfile.mkstemp(dir=self.path.parent, prefix=self.path.name, suffix=".tmp")
        self.file = os.fdopen(fd, "wb")

    def append(self, row: np.ndarray) -> None:
        row = np.ascontiguousarray(row, dtype=self.dtype)
        if row.shape != self.row_shape:
            raise ValueError(f"row of shape {row.shape}, expected {self.row_shape}")
        self.file.write(row.tobytes())
        self.rows += 1

    def commit(self, key: str, extra: dict | None = None) -> RowFile:
        self.file.close()
        os.replace(self.tmp, self.path)
        meta = {
            "key": key,
            "rows": self.rows,
            "row_shape": list(self.row_shape),
            "dtype": self.dtype.str,
            **(extra or {}),
        }
        write_json_atomic(RowFile.meta_path(self.path), meta)
        return RowFile(self.path, self.rows, self.row_shape, self.dtype.str, meta)

    def __enter__(self) -> RowFileWriter:
        return self

    def __exit__(self, *exc) -> None:
        if not self.file.closed:
            self.file.close()
        if os.path.exists(self.tmp):
            os.unlink(self.tmp)
