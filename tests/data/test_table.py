"""Sentence pairs as tables (TSV, CSV, JSON Lines, gzipped too): columns by name, missing splits carved from the
training file, and a bad row stops everything in one line naming its file and line."""

from __future__ import annotations

import csv
import gzip
import json
from pathlib import Path

import pytest

from lightning_attn.config import compose, section
from lightning_attn.data import DataError, TranslationDataModule

from ..helpers import run_cli

DE = ["Ein Hund läuft.", "Zwei Katzen schlafen.", "Ein Mann liest ein Buch.", "Kinder spielen draußen."]
EN = ["A dog runs.", "Two cats sleep.", "A man reads a book.", "Children play outside."]


def write_table(path: Path, pairs: list[tuple[str, str]], fields: tuple[str, str] = ("de", "en")) -> Path:
    """``pairs`` as the table ``path``'s name says (``.tsv``, ``.csv``, ``.jsonl``; ``.gz``: gzipped)."""
    kind = Path(path.name.removesuffix(".gz")).suffix
    if kind == ".jsonl":
        text = "".join(json.dumps(dict(zip(fields, pair)), ensure_ascii=False) + "\n" for pair in pairs)
    elif kind == ".csv":
        lines: list[str] = []
        writer = csv.writer(_Collect(lines))
        writer.writerows([fields, *pairs])
        text = "".join(lines)
    else:
        text = "".join("\t".join(row) + "\n" for row in [fields, *pairs])
    path.parent.mkdir(parents=True, exist_ok=True)
    data = text.encode("utf-8")
    path.write_bytes(gzip.compress(data) if path.name.endswith(".gz") else data)
    return path


class _Collect:
    def __init__(self, lines: list[str]):
        self.lines = lines

    def write(self, text: str) -> None:
        self.lines.append(text)


def datamodule(*overrides: str) -> TranslationDataModule:
    cfg = compose(["data=table", "data.src_field=de", "data.tgt_field=en", "data.bpe_vocab_size=120", *overrides])
    dm = TranslationDataModule(section(cfg, "data"))
    dm.setup()
    return dm


@pytest.mark.parametrize("name", ["pairs.tsv", "pairs.csv", "pairs.jsonl", "pairs.jsonl.gz", "pairs.tsv.gz"])
def test_each_format_reads_its_columns_by_name(tmp_path, name):
    pairs = list(zip(DE, EN)) * 5 + [('Er sagt "ja", dann geht er.', 'He says "yes", then he leaves.')]
    train = write_table(tmp_path / "train" / name, pairs)
    val = write_table(tmp_path / "val" / name, list(zip(DE, EN)))
    test = write_table(tmp_path / "test" / name, list(zip(DE, EN))[::-1])
    dm = datamodule(f"data.train={train}", f"data.val={val}", f"data.test={test}")
    assert [len(dm.splits[s]) for s in ("train", "val", "test")] == [21, 4, 4]
    assert dm.splits["test"][0].reference == "Children play outside."
    assert dm.src_codec.decode(dm.splits["val"][0].src) == "Ein Hund läuft."


def test_missing_splits_are_carved_from_train_with_a_fixed_seed_and_said(tmp_path, caplog):
    train = write_table(tmp_path / "pairs.tsv", [(f"{d} {i}", f"{e} {i}") for i in range(40) for d, e in zip(DE, EN)])
    dm = datamodule(f"data.train={train}", "data.carve_share=0.1")
    sizes = {s: len(dm.splits[s]) for s in ("train", "val", "test")}
    assert sizes == {"train": 128, "val": 16, "test": 16}
    assert "val and test carved from" in caplog.text and "train 128, val 16, test 16 pairs" in caplog.text
    again = datamodule(f"data.train={train}", "data.carve_share=0.1")
    assert [p.reference for p in again.splits["test"]] == [p.reference for p in dm.splits["test"]]
    test, val = {p.reference for p in dm.splits["test"]}, {p.reference for p in dm.splits["val"]}
    assert not test & val and not test & {p.reference for p in dm.splits["train"]}


@pytest.mark.parametrize(
    ("name", "content", "said"),
    [
        ("bad.tsv", "de\ten\nEin Hund.\tA dog.\nnur eine Spalte\n", r"bad\.tsv:3: 1 columns, the header has 2"),
        ("bad.csv", 'de,en\n"Ein Hund.","A dog.\n', r"bad\.csv:\d+: unexpected end of data"),
        ("bad.jsonl", '{"de": "Ein Hund.", "en": "A dog."}\n{"de": "x", "en": \n', r"bad\.jsonl:2: not JSON"),
        ("bad.jsonl", '{"de": "Ein Hund.", "en": "A dog."}\n{"de": "x"}\n', r"bad\.jsonl:2: no 'en' field"),
        ("bad.tsv", "src\ttgt\nEin Hund.\tA dog.\n", r"bad\.tsv:2: no 'de' column"),
        ("bad.txt", "Ein Hund.\n", r"bad\.txt: a table file ends in \.tsv"),
    ],
)
def test_a_bad_row_is_one_error_naming_file_and_line(tmp_path, name, content, said):
    path = tmp_path / name
    path.write_text(content, encoding="utf-8")
    with pytest.raises(DataError, match=said):
        datamodule(f"data.train={path}", f"data.val={path}", f"data.test={path}")


def test_the_command_says_it_in_one_line_exits_2_and_records_nothing(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"de": "Ein Hund.", "en": "A dog."}\n{oops}\n', encoding="utf-8")
    store = tmp_path / "mlflow.db"
    argv = ["train", "data=table", f"data.train={bad}", "data.src_field=de", "data.tgt_field=en"]
    done = run_cli(*argv, f"logger.tracking_uri=sqlite:///{store}", cwd=tmp_path)
    assert done.returncode == 2, done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "bad.jsonl:2: not JSON" in errors[0], done.stderr
    assert not store.exists()  # nothing recorded


def test_a_table_run_trains_is_scored_again_exactly_and_reported(tmp_path):
    from lightning_attn.evaluate import evaluate
    from lightning_attn.report import build_report
    from lightning_attn.train import train

    from ..helpers import TINY

    pairs = [(f"{d} {i}", f"{e} {i}") for i in range(30) for d, e in zip(DE, EN)]
    train_file = write_table(tmp_path / "pairs.jsonl", pairs)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    table = ["data=table", f"data.train={train_file}", "data.src_field=de", "data.tgt_field=en"]
    small = [o for o in TINY if not o.startswith("data.n_")]  # the built-in corpus's sizes: a file has its own
    overrides = [*table, *small, "data.bpe_vocab_size=120", "data.carve_share=0.1", f"logger.tracking_uri={uri}"]
    result = train(compose([*overrides, f"output_dir={tmp_path / 'out'}"]))
    again = evaluate(result.run_id, [], uri)  # the carved test split, carved again the same way
    assert again.evaluated == "test" and again.metrics["test/bleu"] == result.metrics["test/bleu"]
    written = build_report(uri, tmp_path / "report", formats=("json",), log=False, min_seeds=1)
    assert written.results == 1 and written.report.rows[0].mechanism == "soft"
