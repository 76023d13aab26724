"""Sentence pairs through Hugging Face datasets (``data=hf``): a ``save_to_disk`` folder with nested translation
records, local Parquet and JSON Lines files, missing splits carved, and a bad row in one line."""

from __future__ import annotations

from pathlib import Path

import pytest

from lightning_attn.config import compose, section
from lightning_attn.data import DataError, TranslationDataModule

from ..helpers import run_cli

datasets = pytest.importorskip("datasets", reason="data=hf needs the [hf] extra (the dev extra has it)")

DE = ["Ein Hund läuft.", "Zwei Katzen schlafen.", "Ein Mann liest ein Buch.", "Kinder spielen draußen."]
EN = ["A dog runs.", "Two cats sleep.", "A man reads a book.", "Children play outside."]


def nested(pairs: list[tuple[str, str]]):
    """A split as translation datasets keep it: a ``translation`` column of ``{de, en}`` records."""
    return datasets.Dataset.from_dict({"translation": [{"de": d, "en": e} for d, e in pairs]})


def saved(folder: Path, repeat: int = 5) -> Path:
    """A ``DatasetDict`` with train, validation and test splits, written by ``save_to_disk``."""
    splits = {
        "train": nested([(f"{d} {i}", f"{e} {i}") for i in range(repeat) for d, e in zip(DE, EN)]),
        "validation": nested(list(zip(DE, EN))),
        "test": nested(list(zip(DE, EN))[::-1]),
    }
    datasets.DatasetDict(splits).save_to_disk(str(folder))
    return folder


def datamodule(*overrides: str) -> TranslationDataModule:
    dm = TranslationDataModule(section(compose(["data=hf", "data.bpe_vocab_size=120", *overrides]), "data"))
    dm.setup()
    return dm


def test_a_saved_dataset_dict_reads_its_splits_and_nested_fields(tmp_path):
    folder = saved(tmp_path / "corpus")
    dm = datamodule(f"data.path={folder}", "data.src_field=translation.de", "data.tgt_field=translation.en")
    assert [len(dm.splits[s]) for s in ("train", "val", "test")] == [20, 4, 4]
    assert dm.splits["test"][0].reference == "Children play outside."
    assert dm.src_codec.decode(dm.splits["val"][0].src) == "Ein Hund läuft."


def test_parquet_files_with_the_missing_splits_carved_and_said(tmp_path, caplog):
    pairs = [(f"{d} {i}", f"{e} {i}") for i in range(40) for d, e in zip(DE, EN)]
    train = tmp_path / "train.parquet"
    datasets.Dataset.from_dict({"de": [d for d, _ in pairs], "en": [e for _, e in pairs]}).to_parquet(str(train))
    test = tmp_path / "test.jsonl"
    datasets.Dataset.from_dict({"de": DE, "en": EN}).to_json(str(test))
    dm = datamodule(f"data.path={train}", f"data.test={test}", "data.src_field=de", "data.tgt_field=en")
    assert {s: len(dm.splits[s]) for s in ("train", "val", "test")} == {"train": 152, "val": 8, "test": 4}
    assert "val carved from" in caplog.text and "train 152, val 8 pairs" in caplog.text


@pytest.mark.parametrize(
    ("overrides", "said"),
    [
        (["data.src_field=translation.fr"], r"\[train\]: no 'translation.fr' column; it has translation.de, "),
        (["data.src_field=de"], r"\[train\]: no 'de' column; it has translation"),
        (["data.train_split=training"], r"no 'training' split; it has train, validation, test"),
    ],
)
def test_a_field_or_split_that_is_not_there_is_one_line(tmp_path, overrides, said):
    folder = saved(tmp_path / "corpus", repeat=1)
    with pytest.raises(DataError, match=said):
        datamodule(f"data.path={folder}", "data.src_field=translation.de", "data.tgt_field=translation.en", *overrides)


def test_a_row_without_a_sentence_is_one_line_exit_2_and_nothing_recorded(tmp_path):
    rows = tmp_path / "pairs.jsonl"
    rows.write_text('{"de": "Ein Hund.", "en": "A dog."}\n{"de": "Zwei.", "en": null}\n', encoding="utf-8")
    store = tmp_path / "mlflow.db"
    argv = ["train", "data=hf", f"data.path={rows}", "data.src_field=de", "data.tgt_field=en"]
    done = run_cli(*argv, f"logger.tracking_uri=sqlite:///{store}", cwd=tmp_path)
    assert done.returncode == 2, done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "pairs.jsonl [train] row 1: 'en' is NoneType, not a sentence" in errors[0], errors
    assert not store.exists()
