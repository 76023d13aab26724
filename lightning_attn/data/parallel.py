"""Parallel text on disk: ``{root}/{split}.{lang}`` or ``{split}.{lang}.gz``, one sentence per line.

This is the Multi30k / IWSLT layout. Errors name the file (and line) so a user can fix the data.
"""

from __future__ import annotations

import gzip
import hashlib
import logging
from dataclasses import dataclass
from itertools import repeat
from pathlib import Path

from omegaconf import MISSING

from .cache import cache_folder
from .codec import Codec
from .source import DataError, TextPairSource, Texts


@dataclass
class ParallelDataConfig:
    """Parallel text files ``{root}/{split}.{lang}[.gz]`` (Multi30k, IWSLT, your own)."""

    kind: str = "parallel"
    root: str = MISSING
    src_lang: str = "de"
    tgt_lang: str = "en"
    train_split: str = "train"
    val_split: str = "val"
    test_split: str = "test"
    bpe_vocab_size: int = 8000
    lowercase: bool = False
    max_train_len: int = 60  # drop training pairs longer than this many subwords on either side
    cache_dir: str | None = None  # vocabulary cache; default: next to the data, else ~/.cache
    batch_size: int = 64  # sentences per batch (when batch_tokens is 0)
    # > 0: batches of similar-length pairs holding up to this many padded tokens on either side (less
    # padding, even step times); 0: batch_size pairs drawn at random
    batch_tokens: int = 0
    num_workers: int = 0


log = logging.getLogger(__name__)


def find_split_file(root: Path, split: str, lang: str) -> Path:
    """``root/split.lang``, else ``root/split.lang.gz``."""
    for name in (f"{split}.{lang}", f"{split}.{lang}.gz"):
        if (root / name).is_file():
            return root / name
    raise DataError(f"missing data file: {root / f'{split}.{lang}'} (or .gz) — check data.root and the split names")


def read_lines(path: Path) -> list[str]:
    """Lines of a UTF-8 text file (plain or gzip), stripped of the line break.

    Decodes line by line so an encoding error reports the line it is on.
    """
    opener = gzip.open if path.suffix == ".gz" else open
    lines: list[str] = []
    try:
        with opener(path, "rb") as f:
            for number, raw in enumerate(f, start=1):
                try:
                    lines.append(raw.decode("utf-8").rstrip("\r\n"))
                except UnicodeDecodeError as e:
                    raise DataError(f"{path}:{number}: not UTF-8 ({e.reason} at byte {e.start})") from None
    except (OSError, EOFError) as e:
        raise DataError(f"{path}: cannot read ({e})") from None
    return lines


def read_aligned(src_path: Path, tgt_path: Path) -> tuple[list[str], list[str]]:
    """The aligned lines of a source file and its target file; empty pairs dropped (and counted in the log)."""
    src, tgt = read_lines(src_path), read_lines(tgt_path)
    if len(src) != len(tgt):
        raise DataError(
            f"line counts differ: {src_path} has {len(src)} lines, {tgt_path} has {len(tgt)}; "
            f"the files must be aligned line by line (first line with no partner: {min(len(src), len(tgt)) + 1})"
        )
    return non_empty([(s.strip(), t.strip()) for s, t in zip(src, tgt)], src_path)


def non_empty(pairs: list[tuple[str, str]], path: Path) -> tuple[list[str], list[str]]:
    """The sources and targets of ``pairs`` (read from ``path``) without those with an empty side (counted in the
    log); none left is a DataError."""
    kept = [(s, t) for s, t in pairs if s and t]
    if len(kept) < len(pairs):
        log.info("%s: dropped %d pairs with an empty side", path, len(pairs) - len(kept))
    if not kept:
        raise DataError(f"{path}: no non-empty sentence pairs")
    return [s for s, _ in kept], [t for _, t in kept]


def read_parallel(root: str | Path, split: str, src_lang: str, tgt_lang: str) -> tuple[list[str], list[str]]:
    """The aligned source and target lines of one split (see :func:`read_aligned`)."""
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"data.root {root} is not a directory")
    return read_aligned(find_split_file(root, split, src_lang), find_split_file(root, split, tgt_lang))


def cached_bpe(
    root: str | Path,
    train_lines: list[str],
    train_file: Path | None,
    *,
    lang: str,
    vocab_size: int,
    lowercase: bool,
    cache_dir: str | None = None,
    digest: str | None = None,
) -> Codec:
    """The BPE vocabulary for ``train_file``, trained once and reused while the file is unchanged (or while
    ``digest``, which names training data that is not one file, is)."""
    digest = digest or hashlib.sha256(train_file.read_bytes()).hexdigest()[:12]
    path = cache_folder(Path(root), cache_dir) / f"bpe-{lang}-{vocab_size}{'-lc' if lowercase else ''}-{digest}.json"
    if path.is_file():
        log.info("using cached vocabulary %s", path)
        return Codec.load(path)
    codec = Codec.bpe(train_lines, vocab_size, lowercase)
    codec.save(path)
    log.info("trained vocabulary %s (%d entries)", path, len(codec))
    return codec


class ParallelSource(TextPairSource):
    """Parallel text files ``{root}/{split}.{lang}[.gz]``, subword (BPE) vocabularies trained on the training
    split once and cached."""

    schema = ParallelDataConfig

    @property
    def root(self) -> Path:
        return Path(self.cfg["root"]).expanduser()

    @property
    def location(self) -> str:
        return str(self.root)

    def read(self) -> dict[str, Texts]:
        c = self.cfg
        return {
            split: (*read_parallel(self.root, c[f"{split}_split"], c["src_lang"], c["tgt_lang"]), repeat(None))
            for split in ("train", "val", "test")
        }

    def vocabularies(self, texts: dict[str, Texts]) -> tuple[Codec, Codec]:
        c, root = self.cfg, self.root
        train_src, train_tgt, _ = texts["train"]
        codecs = []
        for lines, lang in ((train_src, c["src_lang"]), (train_tgt, c["tgt_lang"])):
            train_file = find_split_file(root, c["train_split"], lang)
            codecs.append(
                cached_bpe(
                    root,
                    lines,
                    train_file,
                    lang=lang,
                    vocab_size=c["bpe_vocab_size"],
                    lowercase=c["lowercase"],
                    cache_dir=c["cache_dir"],
                )
            )
        return codecs[0], codecs[1]

    def evaluation(self, split: str | None) -> tuple[str, Texts]:
        name = split or self.cfg["test_split"]
        src, tgt = read_parallel(self.root, name, self.cfg["src_lang"], self.cfg["tgt_lang"])
        return name, (src, tgt, repeat(None))
