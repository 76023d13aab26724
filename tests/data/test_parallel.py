"""Parallel text by path: formats, errors naming file and line, the BPE cache."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from lightning_attn.config import compose, section
from lightning_attn.data import DataError, TranslationDataModule

DE = ["Ein Hund läuft.", "Zwei Katzen schlafen.", "Ein Mann liest ein Buch.", "Kinder spielen draußen."]
EN = ["A dog runs.", "Two cats sleep.", "A man reads a book.", "Children play outside."]


def write(root: Path, name: str, lines: list[str], gz: bool = False) -> Path:
    path = root / (name + (".gz" if gz else ""))
    data = ("\n".join(lines) + "\n").encode()
    path.write_bytes(gzip.compress(data) if gz else data)
    return path


def make_corpus(root: Path, gz: bool = False) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for split in ("train", "val", "test"):
        write(root, f"{split}.de", DE * 5, gz)
        write(root, f"{split}.en", EN * 5, gz)
    return root


def datamodule(root: Path, *extra: str) -> TranslationDataModule:
    cfg = compose(["data=parallel", f"data.root={root}", "data.bpe_vocab_size=120", *extra])
    dm = TranslationDataModule(section(cfg, "data"))
    dm.setup()
    return dm


@pytest.mark.parametrize("gz", [False, True])
def test_reads_plain_and_gzip(tmp_path, gz):
    dm = datamodule(make_corpus(tmp_path / "c", gz))
    assert len(dm.splits["train"]) == 20
    pair = dm.splits["val"][0]
    assert pair.reference == "A dog runs."
    # the subword vocabulary round-trips the text exactly
    assert dm.detokenize(pair.tgt) == "A dog runs."
    assert dm.src_codec.decode(pair.src) == "Ein Hund läuft."


def test_vocabulary_is_cached_next_to_the_data_and_reused(tmp_path):
    root = make_corpus(tmp_path / "c")
    datamodule(root)
    cached = sorted((root / ".lightning_attn_cache").glob("*.json"))
    assert [p.name.split("-")[1] for p in cached] == ["de", "en"]
    stamps = [p.stat().st_mtime_ns for p in cached]
    datamodule(root)
    assert [p.stat().st_mtime_ns for p in cached] == stamps  # loaded, not retrained
    # changing the training text makes a new vocabulary
    write(root, "train.en", EN[::-1] * 5)
    datamodule(root)
    assert len(list((root / ".lightning_attn_cache").glob("bpe-en-*.json"))) == 2


def test_read_only_data_caches_in_the_user_cache(tmp_path, monkeypatch):
    root = make_corpus(tmp_path / "c")
    root.chmod(0o555)
    monkeypatch.setattr("os.access", lambda *a, **k: False)
    try:
        datamodule(root)
    finally:
        root.chmod(0o755)
    assert not (root / ".lightning_attn_cache").exists()
    assert list((tmp_path / "cache" / "lightning_attn").glob("*/bpe-de-*.json"))


def test_missing_file_is_named(tmp_path):
    root = make_corpus(tmp_path / "c")
    (root / "test.en").unlink()
    with pytest.raises(DataError, match=r"missing data file: .*test\.en"):
        datamodule(root)


def test_missing_root_is_named(tmp_path):
    with pytest.raises(DataError, match="is not a directory"):
        datamodule(tmp_path / "nowhere")


def test_misaligned_line_counts_name_both_files(tmp_path):
    root = make_corpus(tmp_path / "c")
    write(root, "val.en", EN * 5 + ["one too many"])
    with pytest.raises(DataError) as info:
        datamodule(root)
    message = str(info.value)
    assert "val.de has 20 lines" in message and "val.en has 21" in message and "line with no partner: 21" in message


@pytest.mark.parametrize("gz", [False, True])
def test_non_utf8_names_file_and_line(tmp_path, gz):
    root = make_corpus(tmp_path / "c")
    good = ("\n".join(DE * 5) + "\n").encode().split(b"\n")
    good[6] = "Ein Bär".encode("latin-1")
    data = b"\n".join(good)
    (root / "train.de").unlink(missing_ok=True)
    (root / "train.de.gz").unlink(missing_ok=True)
    (root / ("train.de.gz" if gz else "train.de")).write_bytes(gzip.compress(data) if gz else data)
    with pytest.raises(DataError, match=r"train\.de(\.gz)?:7: not UTF-8"):
        datamodule(root)


def test_empty_pairs_are_dropped(tmp_path):
    root = make_corpus(tmp_path / "c")
    write(root, "train.de", DE * 5 + [""])
    write(root, "train.en", EN * 5 + ["orphan"])
    assert len(datamodule(root).splits["train"]) == 20


def test_long_training_pairs_are_filtered(tmp_path):
    dm = datamodule(make_corpus(tmp_path / "c"), "data.max_train_len=4")
    assert 0 < len(dm.splits["train"]) < 20
    assert all(len(p.src) <= 4 and len(p.tgt) <= 4 for p in dm.splits["train"])
    assert len(dm.splits["test"]) == 20  # evaluation data is never filtered
