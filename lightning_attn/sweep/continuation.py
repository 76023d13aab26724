"""A retried trial continues where its dead attempt stopped.

When a trial's worker or host dies (or a stop interrupts it), the sweep enqueues a retry with the same
parameters and seed (:mod:`.storage`). The retry looks for the last checkpoint of the attempt it repeats
— the file in that attempt's trial folder, where this host can read it (its own, or a file system the hosts
share), else the copy a run tracked on a server uploaded
(:mod:`lightning_attn.tracking.checkpoints`) — and, with that attempt's vocabularies, continues training
from it in its own MLflow run: the epochs already trained are not trained again, and its curves go on at
the step where they stopped. Where no checkpoint is reachable it starts over, and says so.
"""

from __future__ import annotations

import logging
from pathlib import Path

import optuna

from ..config import compose
from ..saved_runs import LAST_CHECKPOINT, RunRecordError, download, run_vocabularies
from ..tracking.checkpoints import ARTIFACT_DIR
from ..tracking.lifecycle import Resumption
from .storage import FOLDER, RETRY_OF, RUN_ID

log = logging.getLogger(__name__)


def trial_folder(sweep_folder: Path, study_name: str, number: int) -> Path:
    """Where trial ``number`` of a study writes its checkpoints (``output_dir``)."""
    return sweep_folder / "trials" / study_name / str(number)


def _finished(checkpoint: Path, max_epochs: int) -> bool:
    """Whether the checkpoint's training had already ended (the epoch cap, or early stopping): continuing
    it would train nothing and leave the trial without its validation metric."""
    import torch

    state = torch.load(checkpoint, map_location="cpu", weights_only=True)
    stopped = any(isinstance(v, dict) and v.get("stopped_epoch", 0) > 0 for v in state.get("callbacks", {}).values())
    return stopped or state.get("epoch", 0) + 1 >= max_epochs


def continuation(
    sweep_folder: Path, tracking_uri: str, study: optuna.Study, *, trial: optuna.Trial, into: Path, overrides: list[str]
) -> Resumption | None:
    """How ``trial`` continues the attempt it retries; None for a first attempt, or when nothing of the
    dead attempt can be read or its training had already ended (then it starts over, with one log line
    saying why)."""
    from mlflow import MlflowClient

    previous = trial.user_attrs.get(RETRY_OF)
    if previous is None:
        return None
    attempt = next((t for t in study.get_trials(deepcopy=False) if t.number == previous), None)
    attrs = attempt.user_attrs if attempt is not None else {}
    dead_run = attrs.get(RUN_ID)
    # where the dead attempt wrote: readable here when it ran on this host, or on a file system hosts share
    folder = Path(attrs.get(FOLDER) or trial_folder(sweep_folder, study.study_name, previous))
    local = sorted(folder.rglob(LAST_CHECKPOINT)) if folder.is_dir() else []
    client = MlflowClient(tracking_uri)
    checkpoint = local[0] if local else None
    if checkpoint is None and dead_run:
        checkpoint = download(client, dead_run, f"{ARTIFACT_DIR}/{LAST_CHECKPOINT}", into / "checkpoint")
    if checkpoint is None or not dead_run:
        log.info(
            "trial %s #%d starts over: no checkpoint of #%d is reachable", study.study_name, trial.number, previous
        )
        return None
    if _finished(checkpoint, compose(overrides).trainer.max_epochs):  # the trial's own config: its epoch cap
        log.info(
            "trial %s #%d starts over: #%d had finished training (its test was lost)",
            study.study_name,
            trial.number,
            previous,
        )
        return None
    try:
        vocabularies = run_vocabularies(client, dead_run, into)
    except RunRecordError as e:
        log.info("trial %s #%d starts over: %s", study.study_name, trial.number, e)
        return None
    log.info("trial %s #%d continues #%d from %s", study.study_name, trial.number, previous, checkpoint)
    return Resumption(checkpoint, vocabularies, [f"continues trial #{previous} (run {dead_run})"], same_run=False)
