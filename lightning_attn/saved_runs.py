"""What a finished (or stopped) training run left behind, read back from MLflow: its config, vocabularies and
checkpoints. ``lightning-attn evaluate`` scores a run again from them; ``lightning-attn train --resume`` continues
one from them.

Every lookup that can fail raises :class:`RunRecordError` with one line saying which run lacks what.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from omegaconf import DictConfig

from .config import EXPERIMENT, GROUP_NAMES, ConfigError, compose
from .tracking import mask_secrets
from .tracking import tags as T
from .tracking.checkpoints import ARTIFACT_DIR

#: the file Lightning's ModelCheckpoint(save_last=True) writes beside the best checkpoint after every epoch
LAST_CHECKPOINT = "last.ckpt"


class RunRecordError(LookupError):
    """The run's record lacks what is needed (no such run, no checkpoint, no vocabularies): one line says why."""


def open_run(run_id: str, tracking_uri: str | None = None) -> tuple[Any, Any, str]:
    """``(client, run, store)``: the store ``tracking_uri`` names (default: ``$MLFLOW_TRACKING_URI``, else
    ``sqlite:///mlflow.db`` here), checked, and run ``run_id`` in it.

    Raises:
        RunRecordError: no such run there (one line).
    """
    from mlflow import MlflowClient

    from .tracking import check_tracking_store, resolve_tracking_uri

    uri = resolve_tracking_uri(tracking_uri)
    check_tracking_store(uri)
    client = MlflowClient(uri)
    return client, get_run(client, run_id, uri), uri


def get_run(client: Any, run_id: str, uri: str) -> Any:
    """The MLflow run ``run_id``, or one line naming the (masked) store that lacks it."""
    from mlflow.exceptions import MlflowException

    try:
        return client.get_run(run_id)
    except MlflowException:
        raise RunRecordError(f"no run {run_id!r} in {mask_secrets(uri)}") from None


def download(client: Any, run_id: str, path: str, into: Path) -> Path | None:
    """One artifact (file or folder) of the run into ``into``; None if the run has no such artifact."""
    from mlflow.exceptions import MlflowException

    try:
        return Path(client.download_artifacts(run_id, path, str(into)))
    except (MlflowException, OSError):
        return None


def check_overrides(overrides: list[str]) -> None:
    """A saved run's config changes by ``dotted.key=value`` only: its checkpoint was trained with its groups."""
    for item in overrides:
        key = item.partition("=")[0]
        if key in (*GROUP_NAMES, EXPERIMENT):
            raise ConfigError(f"{key}= cannot change: the checkpoint was trained with the run's {key}")


def run_config(client: Any, run_id: str, into: Path, overrides: list[str]) -> DictConfig:
    """The run's composed config (its ``config.yaml`` artifact) with ``dotted.key=value`` ``overrides`` applied."""
    check_overrides(overrides)
    saved_path = download(client, run_id, "config.yaml", into)
    if saved_path is None:
        raise RunRecordError(f"run {run_id} has no config.yaml artifact: it was not trained by lightning-attn train")
    saved = yaml.safe_load(saved_path.read_text(encoding="utf-8"))
    choices = saved.pop("choices", {})
    groups = [f"{g}={c}" for g, c in choices.items() if g in GROUP_NAMES]
    return compose(groups + overrides, base=saved, base_source=f"run {run_id}'s config.yaml")


def run_vocabularies(client: Any, run_id: str, into: Path) -> Path:
    """The folder of the run's vocabularies (the ids its model was trained on)."""
    folder = download(client, run_id, T.VOCABULARIES, into)
    if folder is None:
        raise RunRecordError(
            f"run {run_id} has no {T.VOCABULARIES}/ artifacts (it predates evaluate): "
            "its model's ids cannot be read back into words"
        )
    return folder


def _walk(client: Any, run_id: str, path: str):
    for info in client.list_artifacts(run_id, path):
        if info.is_dir:
            yield from _walk(client, run_id, info.path)
        else:
            yield info


def best_checkpoint(client: Any, run: Any, into: Path) -> Path:
    """The run's best checkpoint: the file its tag names, else the copy uploaded as an artifact (by a run
    tracked on a server, ``checkpoints/best.ckpt``; by ``logger.log_model=true``, under ``model/``)."""
    tagged = run.data.tags.get(T.BEST_CHECKPOINT)
    if tagged and Path(tagged).is_file():
        return Path(tagged)
    uploaded = [
        a.path
        for folder in (ARTIFACT_DIR, "model")
        for a in _walk(client, run.info.run_id, folder)
        if a.path.endswith(".ckpt") and Path(a.path).name != LAST_CHECKPOINT
    ]
    best = sorted(uploaded, key=lambda p: ("best" not in Path(p).name, p))
    if best:
        path = download(client, run.info.run_id, best[0], into)
        if path is not None:
            return path
    where = f"{tagged} is gone" if tagged else "it recorded none"
    raise RunRecordError(
        f"run {run.info.run_id} has no checkpoint to evaluate ({where}; train with "
        "trainer.enable_checkpointing=true, or logger.log_model=true to keep a copy in MLflow)"
    )


def resume_checkpoint(client: Any, run: Any, into: Path) -> Path:
    """The checkpoint a run continues from: the last epoch's (``last.ckpt`` beside the best), else the best —
    the files on this host, else the copies a run tracked on a server uploaded (``checkpoints/``).

    Both are full training checkpoints (weights, optimiser and schedule, early stopping's history), so training
    continues where it stopped; from the best one it repeats the epochs after it.
    """
    tagged = run.data.tags.get(T.BEST_CHECKPOINT)
    if tagged:
        for path in (Path(tagged).with_name(LAST_CHECKPOINT), Path(tagged)):
            if path.is_file():
                return path
    for name in (LAST_CHECKPOINT, "best.ckpt"):
        path = download(client, run.info.run_id, f"{ARTIFACT_DIR}/{name}", into)
        if path is not None:
            return path
    if not tagged:
        raise RunRecordError(
            f"run {run.info.run_id} has no checkpoint to resume from (it recorded none: it stopped before its "
            "first validation, or trained with trainer.enable_checkpointing=false)"
        )
    raise RunRecordError(
        f"run {run.info.run_id} has no checkpoint to resume from ({tagged} is gone, and none was "
        "uploaded: runs tracked on a server upload theirs)"
    )


@dataclass
class Trained:
    """A run's model rebuilt from its record, with its data set up to score ``evaluated``."""

    config: DictConfig
    data: Any  # the task's DataModule, its vocabularies the run's, ``test`` the split or files to score
    module: Any  # the task's LightningModule with the best checkpoint's weights
    checkpoint: Path
    evaluated: str


def load_trained(
    client: Any,
    run: Any,
    into: Path,
    *,
    overrides: list[str] | None = None,
    split: str | None = None,
    files: tuple[str, str] | None = None,
    scored: bool = True,
) -> Trained:
    """The run's task module with its best checkpoint's weights (``torch.load(weights_only=True)``), and its data
    with the run's vocabularies, ``test`` set up as ``split`` (default: the configured test split) or ``files``;
    not ``scored``: no test split at all (the run's data need not be there), for new inputs (``predict``).

    Raises:
        RunRecordError: the run lacks its config, vocabularies or a checkpoint.
        ConfigError: an override, split or file that does not fit (one line).
    """
    run_id = run.info.run_id
    cfg = run_config(client, run_id, into, overrides or [])
    vocabularies = run_vocabularies(client, run_id, into)
    checkpoint = best_checkpoint(client, run, into)
    data, module, evaluated = rebuild(cfg, vocabularies, checkpoint, split=split, files=files, scored=scored)
    return Trained(cfg, data, module, checkpoint, evaluated)


def rebuild(
    cfg: DictConfig,
    vocabularies: Path,
    checkpoint: Path,
    *,
    split: str | None = None,
    files: tuple[str, str] | None = None,
    scored: bool = True,
) -> tuple[Any, Any, str]:
    """A trained model from its config, its vocabularies folder and a checkpoint (``weights_only=True``): ``(its
    data, its task module, what its test split holds)`` — ``test`` as in :func:`load_trained`.

    Raises:
        ConfigError: a split or file that does not fit (one line).
    """
    import lightning as L
    import torch

    from .config import section
    from .data import DataError
    from .tasks import TASKS

    spec = TASKS[cfg.task.name]
    L.seed_everything(cfg.seed, verbose=False)  # the same token batches as the run's own test
    data = spec.datamodule(section(cfg, "data"))
    data.load_vocabularies(vocabularies)
    try:
        evaluated = data.setup_evaluation(split, files) if scored else ""
    except DataError as e:
        raise ConfigError(str(e)) from None
    module = spec.from_data(section(cfg, "task"), section(cfg, "model"), section(cfg, "attention"), data)
    state = torch.load(checkpoint, map_location="cpu", weights_only=True)
    module.load_state_dict(state["state_dict"])
    if scored:  # new inputs come as the model takes them raw (a frozen encoder's features are computed, not cached)
        module.bind_data(data)
    return data, module, evaluated
