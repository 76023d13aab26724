"""What a user runs: every task x every data source it accepts trains one tiny epoch, validates, tests and
writes its artifacts with the default callbacks and settings — attention pictures, stability, speed,
early stopping, checkpoints. Only sizes are made small (data, model widths, batches, epochs, how many
timed calls); nothing is switched off."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest
from mlflow import MlflowClient

from lightning_attn.config import compose
from lightning_attn.tasks import TASKS
from lightning_attn.train import train

from .data.test_caption_table import listing
from .data.test_karpathy import make_dataset

SMALL_RUN = [
    "trainer.max_epochs=1",
    "trainer.limit_train_batches=3",
    "speed.latency_calls_b1=2",
    "speed.latency_calls_batch=1",
    "speed.latency_warmup=1",
    "stability.estimator_samples=2",
]
SMALL_TRANSLATION = [
    "model.embed_dim=16",
    "model.encoder_hidden=16",
    "model.decoder_hidden=32",
    "attention.hidden_dim=16",
    "data.batch_size=8",
]
SMALL_CAPTIONING = [
    "model.channels=[8,8,16]",
    "model.hidden=32",
    "model.embed_dim=16",
    "attention.hidden_dim=16",
    "data.batch_size=4",
]
# model=transformer, small: what its defaults matrix entries add to the task's built-in source
SMALL_TRANSFORMER = ["model=transformer", "model.width=16", "model.heads=2", "model.ffn=32", "model.encoder_layers=1"]
SMALL_TRANSFORMER_IMAGES = ["model.image.channels=[8,8,16]", "data.batch_size=4"]

# German and English lines with the characters real corpora have (umlauts, ß, accents, quotes)
DE = [
    "Ein Mann fährt Fahrrad .",
    "Zwei Hunde spielen im Schnee .",
    "Eine Frau liest ein Buch über Straßen .",
    "Kinder laufen am Strand .",
    "Der Koch bereitet das Essen zu .",
    "„Café“ steht auf dem Schild .",
]
EN = [
    "A man rides a bike .",
    "Two dogs play in the snow .",
    "A woman reads a book about streets .",
    "Children run on the beach .",
    "The cook prepares the food .",
    "“Café” is on the sign .",
]


def _parallel_text(root: Path, splits: dict[str, str], gz: bool) -> Path:
    """``{root}/{file split}.{de,en}[.gz]`` with a few hundred lines per training split."""
    root.mkdir(parents=True)
    for role, name in splits.items():
        repeat = 30 if role == "train" else 2
        for lang, lines in (("de", DE), ("en", EN)):
            text = ("\n".join(lines * repeat) + "\n").encode()
            path = root / f"{name}.{lang}{'.gz' if gz else ''}"
            path.write_bytes(gzip.compress(text) if gz else text)
    return root


def _builtin_translation(tmp: Path) -> list[str]:
    return ["task=translation", "data.n_train=64", "data.n_val=8", "data.n_test=8"]


def _parallel(tmp: Path) -> list[str]:
    root = _parallel_text(tmp / "corpus", {"train": "train", "val": "val", "test": "test"}, gz=False)
    return ["task=translation", "data=parallel", f"data.root={root}", "data.bpe_vocab_size=120"]


def _multi30k_format(tmp: Path) -> list[str]:
    splits = {"train": "train", "val": "val", "test": "test_2016_flickr"}
    root = _parallel_text(tmp / "multi30k", splits, gz=True)
    return ["task=translation", "data=multi30k", f"data.root={root}", "data.bpe_vocab_size=120"]


def _table(tmp: Path, name: str, *, carved: bool) -> list[str]:
    """Sentence pairs as a table (``name`` says its format); ``carved``: one training file, val and test carved."""
    files = {}
    for role in ("train",) if carved else ("train", "val", "test"):
        pairs = list(zip(DE, EN)) * (30 if role == "train" else 2)
        path = tmp / role / name
        path.parent.mkdir(parents=True)
        if name.endswith(".jsonl"):
            path.write_text("".join(json.dumps({"de": d, "en": e}) + "\n" for d, e in pairs), encoding="utf-8")
        else:
            separator = "\t" if name.endswith(".tsv") else ","
            rows = [("de", "en"), *((d, f'"{e}"' if separator == "," else e) for d, e in pairs)]
            path.write_text("".join(separator.join(r) + "\n" for r in rows), encoding="utf-8")
        files[role] = path
    given = [f"data.{role}={path}" for role, path in files.items()]
    fields = ["data.src_field=de", "data.tgt_field=en", "data.bpe_vocab_size=120"]
    return ["task=translation", "data=table", *given, *fields]


def _hf_folder(tmp: Path) -> list[str]:
    """A ``save_to_disk`` folder with train and validation splits of nested translation records (test carved)."""
    import datasets

    def split(repeat: int):
        return datasets.Dataset.from_dict({"translation": [{"de": d, "en": e} for d, e in zip(DE, EN)] * repeat})

    folder = tmp / "hf"
    datasets.DatasetDict({"train": split(30), "validation": split(2)}).save_to_disk(str(folder))
    fields = ["data.src_field=translation.de", "data.tgt_field=translation.en", "data.bpe_vocab_size=120"]
    return ["task=translation", "data=hf", f"data.path={folder}", *fields]


def _builtin_captioning(tmp: Path) -> list[str]:
    return ["task=captioning", "data.n_train=32", "data.n_val=8", "data.n_test=8", "data.canvas=32", "data.cell=8"]


def _karpathy(tmp: Path) -> list[str]:
    json_path = make_dataset(tmp / "flickr", n=18)
    images = tmp / "flickr" / "images"
    return [
        "task=captioning",
        "data=karpathy",
        f"data.json={json_path}",
        f"data.image_root={images}",
        "data.image_size=32",
    ]


def _caption_table(tmp: Path) -> list[str]:
    path = listing(tmp / "listed", "captions.csv", splits=True, n=18)
    where = [f"data.file={path}", f"data.image_root={path.parent / 'images'}"]
    return ["task=captioning", "data=caption_table", *where, "data.image_size=32"]


def _karpathy_features(tmp: Path) -> list[str]:
    return [*_karpathy(tmp), "model.freeze_encoder=true", "model.cache_features=true"]


# name -> (how its config is made, how many validation examples it has)
SOURCES = {
    "translation-builtin": (_builtin_translation, 8),
    "translation-parallel": (_parallel, 12),
    "translation-multi30k-files": (_multi30k_format, 12),
    "translation-table-tsv": (lambda tmp: _table(tmp, "pairs.tsv", carved=False), 12),
    "translation-table-csv": (lambda tmp: _table(tmp, "pairs.csv", carved=False), 12),
    "translation-table-jsonl-carved": (lambda tmp: _table(tmp, "pairs.jsonl", carved=True), 18),
    "translation-hf-folder": (_hf_folder, 12),
    "captioning-builtin": (_builtin_captioning, 8),
    "captioning-karpathy": (_karpathy, 3),
    "captioning-caption-table": (_caption_table, 3),
    "captioning-karpathy-features": (_karpathy_features, 3),
    "translation-builtin-transformer": (_builtin_translation, 8),
    "captioning-builtin-transformer": (_builtin_captioning, 8),
}


def test_every_data_source_of_every_task_is_in_the_matrix(tmp_path):
    accepted = {(name, kind) for name, task in TASKS.items() for kind in task.sources}
    covered = set()
    for i, (make, _) in enumerate(SOURCES.values()):
        cfg = compose(make(tmp_path / str(i)))
        covered.add((cfg.task.name, cfg.data.kind))
    assert accepted <= covered, accepted - covered


@pytest.mark.parametrize("source", sorted(SOURCES))
def test_defaults_train_validate_test_and_write_artifacts(source, tmp_path):
    make, n_val = SOURCES[source]
    task = source.split("-")[0]
    small = SMALL_TRANSLATION if task == "translation" else SMALL_CAPTIONING
    if source.endswith("transformer"):
        small = [*SMALL_TRANSFORMER, *(SMALL_TRANSFORMER_IMAGES if task == "captioning" else ["data.batch_size=8"])]
    cfg = compose([*make(tmp_path), *small, *SMALL_RUN])
    result = train(cfg)

    client = MlflowClient(result.tracking_uri)
    run = client.get_run(result.run_id)
    assert run.info.status == "FINISHED"
    spec = TASKS[task]
    for metric in (spec.headline, spec.monitor, "speed/infer_latency_ms_p50_b1", "run/epochs"):
        assert metric in run.data.metrics, metric
    # alignment is scored only where the data has gold attention: the built-in sources
    assert ("test/align_acc" in run.data.metrics) == ("builtin" in source)
    # the artifacts every run writes: its config, vocabularies, test predictions, attention pictures
    top = {a.path for a in client.list_artifacts(result.run_id)}
    assert {"config.yaml", "vocabularies", "predictions", "attention"} <= top, top
    pictures = [a.path for a in client.list_artifacts(result.run_id, "attention/epoch_001")]
    n = min(cfg.task.attention_pictures, n_val)
    assert pictures == [f"attention/epoch_001/val_{i}.png" for i in range(n)]
    hypotheses = client.download_artifacts(result.run_id, "predictions/test.hyp.txt", str(tmp_path))
    assert Path(hypotheses).read_text(encoding="utf-8").count("\n") >= 2
    assert result.best_checkpoint and Path(result.best_checkpoint).is_file()
