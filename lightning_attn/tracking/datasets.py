"""What data a run trained, validated and tested on, as MLflow dataset inputs (the runs table's Dataset column).

One input per split, with MLflow's context tag (``train``, ``validation``, ``test``), each naming:

* the data — the ``data=`` choice (``synthetic``, ``multi30k``, …); for a generic choice that only names the
  format (``parallel``, ``karpathy``), the folder or file it read;
* its source — where its data source says it reads from (:attr:`~lightning_attn.data.source.DataSource.location`)
  as MLflow's ``local`` source, or, for a source that generates its data in memory, ``built-in`` (MLflow's
  ``code`` source, naming the generator's module);
* a digest that is stable: of the split's files' bytes (a folder's ``{split}.*`` files — for parallel text
  the two languages'), of a data file that holds every split (a Karpathy JSON: its captions and splits; the
  images are not read), or of the generator's settings (which, with its seed, fix every example);
* and, as its profile, how many examples the run used (and which files).

Nothing here reads the examples: the run's DataModule did, and passes the sizes of its splits.
"""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path
from typing import Any

from . import tags as T

#: settings that only say how batches are served, not what the data is: not in a built-in source's digest
SERVING = ("batch_size", "batch_tokens", "num_workers", "cache_dir")
#: a DataModule's split -> MLflow's context of a dataset input
CONTEXTS = {"train": "train", "val": "validation", "test": "test"}
DIGEST_CHARS = 8  # as MLflow's own datasets


def data_name(data: dict[str, Any], choice: str) -> str:
    """The name a run's data is known by: the ``data=`` choice, or, for a generic one that only names the format
    (the choice is the kind), the folder or file it read."""
    source = _source(data)
    if choice != data.get("kind") or source is None or source.builtin:
        return choice
    where = Path(source.location).expanduser()
    return (where.stem if where.is_file() else where.resolve().name) or choice


def training_inputs(data: dict[str, Any], choice: str, sizes: dict[str, int]) -> list:
    """The dataset inputs of a training run: one per split in ``sizes`` (``train``/``val``/``test`` -> examples)."""
    name = data_name(data, choice)
    # a source with named split files (parallel text: data.test_split=test_2016_flickr) reads those
    return [
        dataset_input(data, name, data.get(f"{split}_split", split), n, CONTEXTS.get(split, split))
        for split, n in sizes.items()
    ]


def evaluation_input(
    data: dict[str, Any], choice: str, split: str | None, files: tuple[str, str] | None, examples: int
) -> Any:
    """The dataset input of ``lightning-attn evaluate``: the split it scored (default: the configured test split)
    or the ``files`` (source, reference) it read, in context ``test``."""
    if files is not None:
        paths = [Path(f).expanduser().resolve() for f in files]
        return _input(
            f"{paths[0].name} -> {paths[1].name}",
            "local",
            json.dumps({"uri": str(paths[0].parent)}),
            digest=_file_digest(paths),
            examples=examples,
            context="test",
            files=paths,
        )
    return dataset_input(data, data_name(data, choice), split or data.get("test_split", "test"), examples, "test")


def dataset_input(data: dict[str, Any], name: str, split: str, examples: int, context: str) -> Any:
    """One split of the data a ``data`` config section describes, as MLflow's dataset input; ``split`` is the
    split's name as its source knows it (``train``; a parallel-text file stem such as ``test_2016_flickr``)."""
    source = _source(data)
    if source is None or source.builtin:
        settings = {k: v for k, v in sorted(data.items()) if k not in SERVING}
        generator = type(source).__module__ if source is not None else str(data.get("kind"))
        digest = _digest(json.dumps({"settings": settings, "split": split}, sort_keys=True, default=str).encode())
        built_in = {"tags": {"source": "built-in", "generator": generator}}
        return _input(name, "code", json.dumps(built_in), digest=digest, examples=examples, context=context)
    where = Path(source.location).expanduser().resolve()
    if where.is_file():  # one file holds every split: the split's name sets their digests apart
        paths, salt = [where], split
    else:
        paths, salt = _split_files(where, split, data), ""
    return _input(
        name,
        "local",
        json.dumps({"uri": str(where)}),
        digest=_file_digest(paths, salt),
        examples=examples,
        context=context,
        files=paths,
    )


def log_datasets(client: Any, run_id: str, inputs: list, attempts: int = 5) -> None:
    """Log dataset inputs on a run (MLflow keeps one of each name and digest, and the first context given).

    MLflow's store creates a dataset the first time its name and digest are logged, without a lock: runs of
    parallel workers that log the same data at the same moment race for it, and the loser's insert breaks the
    unique constraint. The dataset exists then, and logging again links the run to it.
    """
    if not inputs:
        return
    from mlflow.exceptions import MlflowException

    for attempt in range(attempts):
        try:
            client.log_inputs(run_id, datasets=inputs)
            return
        except MlflowException as e:
            if "UNIQUE constraint" not in str(e) and "duplicate key" not in str(e) or attempt == attempts - 1:
                raise
            time.sleep(0.2 * (attempt + 1))


def record_children_datasets(client: Any, experiment_id: str, parent_run_id: str) -> None:
    """A parent run (a sweep study's, a multi-seed run's) records the datasets its child runs used."""
    children = client.search_runs([experiment_id], f"tags.`{T.PARENT}` = '{parent_run_id}'", max_results=1000)
    seen: dict[tuple[str, str], Any] = {}
    for run in children:
        for given in run.inputs.dataset_inputs if run.inputs else []:
            seen.setdefault((given.dataset.name, given.dataset.digest), given)
    log_datasets(client, parent_run_id, list(seen.values()))


def _source(data: dict[str, Any]) -> Any:
    """The data source the section names (its class from the data registry), or None for a kind it lacks."""
    from ..data.registry import DATA

    found = DATA.get(data.get("kind"))
    return found(data) if found is not None else None


def _input(
    name: str, source_type: str, source: str, *, digest: str, examples: int, context: str, files: list[Path] = ()
) -> Any:
    from mlflow.entities import Dataset, DatasetInput, InputTag

    profile = {"examples": examples, **({"files": ", ".join(p.name for p in files)} if files else {})}
    dataset = Dataset(name=name, digest=digest, source_type=source_type, source=source, profile=json.dumps(profile))
    return DatasetInput(dataset, tags=[InputTag(T.DATA_CONTEXT, context)])


def _split_files(folder: Path, split: str, data: dict[str, Any]) -> list[Path]:
    """A split's files in a data folder: ``{split}.{lang}`` or ``.gz`` for each language a section names (parallel
    text), else every ``{split}.*`` file there."""
    langs = [data[k] for k in ("src_lang", "tgt_lang") if data.get(k)]
    if langs:
        return [
            next(
                (p for p in (folder / f"{split}.{lang}", folder / f"{split}.{lang}.gz") if p.is_file()),
                folder / f"{split}.{lang}",
            )
            for lang in langs
        ]
    return sorted(p for p in folder.glob(f"{split}.*") if p.is_file())


def _file_digest(paths: list[Path], salt: str = "") -> str:
    h = hashlib.sha256(salt.encode())
    for path in paths:
        h.update(path.name.encode() + b"\0")
        if not path.is_file():  # read by the run a moment ago, gone now: its name still counts
            continue
        with open(path, "rb") as f:
            while block := f.read(1 << 20):
                h.update(block)
    return h.hexdigest()[:DIGEST_CHARS]


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:DIGEST_CHARS]
