"""New inputs through a trained run: ``lightning-attn predict RUN_ID [--input FILE] [--output FILE] [--beam N]``.

The run's own record is all it needs, as for ``evaluate`` (its config, vocabularies and best checkpoint); its
data need not be there. A translation run translates sentences, a captioning run trained on image files captions
image files; greedily or with a beam (default: as the run was tested), one output per input (an empty input
gives an empty output). Sentences are batched as the run's test split was, so a file ``evaluate src=FILE ref=…``
scores gets the very translations ``predict`` writes for it (batches by count, ``data.batch_tokens=0``:
token-based batches count the references' tokens too).
"""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .config import ConfigError
from .data import DATA, DataError
from .saved_runs import load_trained, open_run
from .tasks import TASKS
from .tracking import tags as T

#: image files predict takes from a folder
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp")


def predict(
    run_id: str,
    inputs: Sequence[str],
    *,
    beam: int | None = None,
    overrides: Sequence[str] = (),
    tracking_uri: str | None = None,
) -> list[str]:
    """The run's outputs for ``inputs`` with its best checkpoint: translations of sentences, or captions of image
    files (:func:`inputs_kind` says which the run takes).

    Args:
        run_id: a trained run.
        inputs: sentences, or image files (paths); an empty one gives an empty output.
        beam: beam size (1: greedy); default: the run's ``task.beam_size``.
        overrides: ``dotted.key=value`` changes to the run's config (``task.max_decode_len=200``).
        tracking_uri: the MLflow store (default: ``$MLFLOW_TRACKING_URI``, else ``sqlite:///mlflow.db``).

    Raises:
        RunRecordError: no such run, or it has no config, vocabularies or checkpoint (one line).
        ConfigError: a beam below 1, an input that cannot be read, or an override that does not fit (one line).
    """
    check_beam(beam)
    client, run, _ = open_run(run_id, tracking_uri)
    kind, data = inputs_kind(run.data.tags.get(T.TASK, "")), run.data.params.get("data.kind", "")
    if kind is None:
        raise ConfigError(f"run {run_id} is not a run of a task predict knows (its task tag)")
    if kind == "image files" and data in DATA and DATA[data].builtin:  # said before anything is loaded
        raise ConfigError(
            f"a data={data} run captions the scenes it draws, not image files: predict images with a run trained "
            "on image files (data=karpathy, data=caption_table)"
        )
    with tempfile.TemporaryDirectory() as tmp:
        trained = load_trained(client, run, Path(tmp), overrides=list(overrides), scored=False)
    width = int(beam if beam is not None else trained.config.task.beam_size)
    try:
        return decode_all(trained.data, trained.module, inputs, beam=width)
    except DataError as e:
        raise ConfigError(str(e)) from None


def decode_all(data: Any, module: Any, inputs: Sequence[str], *, beam: int) -> list[str]:
    """``inputs`` through a rebuilt run (its data module with the run's vocabularies, its task module), batched
    as its test split; an empty input gives an empty output."""
    import torch

    given = [i for i, s in enumerate(inputs) if s.strip()]
    data.setup_prediction([inputs[i].strip() for i in given])
    found: dict[int, str] = {}
    module.eval()
    position = 0
    with torch.inference_mode():
        for batch in data.test_dataloader() if given else ():
            decoded = module.decode(batch, beam)
            indices = getattr(batch, "indices", None) or range(position, position + len(decoded))
            position += len(decoded)
            for index, ids in zip(indices, decoded):
                found[given[int(index)]] = data.detokenize(ids)
    return [found.get(i, "") for i in range(len(inputs))]


def inputs_kind(task: str) -> str | None:
    """What a run of ``task`` takes new inputs as (``sentences``, ``image files``); None: nothing."""
    return getattr(TASKS[task].datamodule, "PREDICTS_FROM", None) if task in TASKS else None


def image_files(paths: Sequence[str | Path]) -> list[str]:
    """Image files, and the image files in folders (sorted, not recursive), in the order given."""
    found: list[str] = []
    for given in paths:
        path = Path(given).expanduser()
        if path.is_dir():
            found += sorted(str(p) for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        else:
            found.append(str(path))
    return found


def check_beam(beam: int | None) -> None:
    """A beam of at least 1, or none given (ConfigError)."""
    if beam is not None and beam < 1:
        raise ConfigError(f"--beam {beam}: a beam of at least 1 (1: greedy)")
