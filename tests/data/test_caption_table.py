"""Images with captions listed in a table (CSV/TSV with a header, JSON Lines): an image's rows are its references,
a listing without splits has val and test carved, and a bad row is one error naming file and line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lightning_attn.config import compose, section
from lightning_attn.data import DataError
from lightning_attn.data.captioning import CaptioningDataModule

from .test_karpathy import make_dataset


def listing(root: Path, name: str, *, splits: bool, n: int = 6) -> Path:
    """The Karpathy test set's images and captions as a table ``name``: a row per caption (JSON Lines: a row per
    image, its captions a list)."""
    entries = json.loads(make_dataset(root, n=n).read_text(encoding="utf-8"))["images"]
    rows = []
    for e in entries:
        captions = [" ".join(s["tokens"]) for s in e["sentences"]]
        split = {"restval": "train"}.get(e["split"], e["split"])
        image = f"{e['filepath']}/{e['filename']}"
        if name.endswith(".jsonl"):
            rows.append({"image": image, "caption": captions} | ({"split": split} if splits else {}))
        else:
            rows += [{"image": image, "caption": c} | ({"split": split} if splits else {}) for c in captions]
    path = root / name
    if name.endswith(".jsonl"):
        path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    else:
        header = ["image", "caption", *(["split"] if splits else [])]
        lines = [",".join(header), *(",".join(f'"{r[h]}"' for h in header) for r in rows)]
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def datamodule(path: Path, *extra: str) -> CaptioningDataModule:
    images = f"data.image_root={path.parent / 'images'}"
    cfg = compose(["task=captioning", "data=caption_table", f"data.file={path}", images, "data.image_size=16", *extra])
    dm = CaptioningDataModule(section(cfg, "data"))
    dm.setup()
    return dm


def test_a_csv_with_splits_reads_as_the_karpathy_json_does(tmp_path):
    dm = datamodule(listing(tmp_path, "captions.csv", splits=True))
    assert [len({id(e.image) for e in dm.splits[s]}) for s in ("val", "test")] == [1, 2]
    first = dm.splits["val"][0]
    assert first.references and all(r == r.lower() for r in first.references)


def test_a_listing_without_splits_has_val_and_test_carved_and_said(tmp_path, caplog):
    dm = datamodule(listing(tmp_path, "captions.jsonl", splits=False), "data.carve_share=0.2")
    assert "val and test carved from" in caplog.text and "train 4, val 1, test 1 images" in caplog.text
    assert len(dm.splits["test"]) == 1 and len(dm.splits["test"][0].references) == 2  # a JSON row's two captions


@pytest.mark.parametrize(
    ("content", "said"),
    [
        ('image,caption\n"val2014/a.png","a cat"\n"val2014/b.png"\n', r"bad\.csv:3: 1 columns, the header has 2"),
        ('image,caption,split\n"val2014/a.png","a cat","dev"\n', r"bad\.csv:2: split 'dev' is not one of"),
        ("img,caption\nx.png,a cat\n", r"bad\.csv:2: no 'image' column"),
    ],
)
def test_a_bad_row_is_one_error_naming_file_and_line(tmp_path, content, said):
    path = tmp_path / "bad.csv"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(DataError, match=said):
        datamodule(path)
