"""New inputs through a trained run: ``lightning-attn predict RUN_ID [--input FILE] [--output FILE] [--beam N]``.

The run's own record is all it needs, as for ``evaluate`` (its config, vocabularies and best checkpoint); its
data need not be there. Each input line is translated, greedily or with a beam (default: as the run was tested),
one output line per input line (an empty line stays empty). Sentences are batched as the run's test split was,
so a file ``evaluate src=FILE ref=…`` scores gets the very translations ``predict`` writes for it (batches by
count, ``data.batch_tokens=0``: token-based batches count the references' tokens too).
"""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .config import ConfigError
from .saved_runs import get_run, load_trained
from .tasks import TASKS
from .tracking import check_tracking_store, resolve_tracking_uri
from .tracking import tags as T


def predict(
    run_id: str,
    sources: Sequence[str],
    *,
    beam: int | None = None,
    overrides: Sequence[str] = (),
    tracking_uri: str | None = None,
) -> list[str]:
    """Translate ``sources`` (one sentence each) with the run's best checkpoint.

    Args:
        run_id: a trained translation run.
        sources: the sentences; an empty one is translated as an empty line.
        beam: beam size (1: greedy); default: the run's ``task.beam_size``.
        overrides: ``dotted.key=value`` changes to the run's config (``task.max_decode_len=200``).
        tracking_uri: the MLflow store (default: ``$MLFLOW_TRACKING_URI``, else ``sqlite:///mlflow.db``).

    Raises:
        RunRecordError: no such run, or it has no config, vocabularies or checkpoint (one line).
        ConfigError: a run of another task, a beam below 1, or an override that does not fit (one line).
    """
    from mlflow import MlflowClient

    check_beam(beam)
    uri = resolve_tracking_uri(tracking_uri)
    check_tracking_store(uri)
    client = MlflowClient(uri)
    run = get_run(client, run_id, uri)
    task = run.data.tags.get(T.TASK, "")
    if not takes_new_inputs(task):
        raise ConfigError(
            f"run {run_id} is a {task or 'lightning-attn'} run: predict translates text; score a captioning run on "
            "a split with lightning-attn evaluate RUN_ID split=NAME"
        )
    with tempfile.TemporaryDirectory() as tmp:
        trained = load_trained(client, run, Path(tmp), overrides=list(overrides), scored=False)
    width = int(beam if beam is not None else trained.config.task.beam_size)
    return translate(trained.data, trained.module, sources, beam=width)


def translate(data: Any, module: Any, sources: Sequence[str], *, beam: int) -> list[str]:
    """``sources`` translated by a rebuilt run (its data module with the run's vocabularies, its task module),
    batched as its test split; an empty sentence gives an empty line."""
    import torch

    given = [i for i, s in enumerate(sources) if s.strip()]
    data.setup_prediction([sources[i].strip() for i in given])
    found: dict[int, str] = {}
    module.eval()
    with torch.inference_mode():
        for batch in data.test_dataloader() if given else ():
            for index, ids in zip(batch.indices, module.decode(batch, beam)):
                found[given[int(index)]] = data.detokenize(ids)
    return [found.get(i, "") for i in range(len(sources))]


def check_beam(beam: int | None) -> None:
    """A beam of at least 1, or none given (ConfigError)."""
    if beam is not None and beam < 1:
        raise ConfigError(f"--beam {beam}: a beam of at least 1 (1: greedy)")


def takes_new_inputs(task: str) -> bool:
    """Whether a run of ``task`` can take new inputs (its data module sets them up: translation)."""
    return task in TASKS and hasattr(TASKS[task].datamodule, "setup_prediction")
