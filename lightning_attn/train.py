"""One training run: config -> data -> model -> Lightning Trainer -> MLflow run.

The CLI's ``train`` command and (later) every sweep trial call :func:`train`. Order matters for
"bad input loses nothing": the data is loaded and checked *before* an MLflow run exists, and a
run that fails or is interrupted is closed as FAILED/KILLED instead of being left RUNNING.
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import lightning as L
from lightning.fabric.plugins.environments import ClusterEnvironment
from lightning.pytorch.callbacks import Callback, LearningRateMonitor, ModelCheckpoint
from lightning.pytorch.loggers import MLFlowLogger
from omegaconf import DictConfig

from . import __version__
from .config import EXPERIMENT, ConfigError, flatten, section
from .processes import check_stop, stops_as_exit_codes
from .saved_runs import LAST_CHECKPOINT
from .tasks import TASKS
from .tracking import (
    check_tracking_store,
    ensure_experiment,
    log_params,
    resolve_tracking_uri,
)
from .tracking import tags as T
from .tracking.checkpoints import CheckpointUpload, uploads
from .tracking.convergence import Convergence
from .tracking.datasets import record_children_datasets
from .tracking.estimator import EstimatorVariance
from .tracking.lifecycle import Resumption, RunLogger, TrackedRun, best_checkpoint
from .tracking.pictures import AttentionPictures
from .tracking.progress import ProgressBar
from .tracking.provenance import TRAIN, source_tags
from .tracking.speed import SpeedMonitor, inference_latency
from .tracking.stability import DivergenceGuard, StabilityMonitor
from .tracking.tags import failure_reason, trait_tags

log = logging.getLogger(__name__)


@dataclass
class TrainResult:
    """What a finished run reports back."""

    run_id: str | None
    tracking_uri: str
    metrics: dict[str, float] = field(default_factory=dict)
    best_checkpoint: str | None = None
    stop_reason: str | None = None  # how training ended (see tracking.convergence)


def build_task(cfg: DictConfig, vocabularies: Path | None = None) -> tuple[L.LightningDataModule, L.LightningModule]:
    """The DataModule (already set up, so data errors surface now) and the LightningModule, as the task
    registry says; with ``vocabularies`` (a folder a run saved), the data is encoded with those instead of
    vocabularies built from the training split."""
    spec = TASKS[cfg.task.name]
    data = spec.datamodule(section(cfg, "data"))
    if vocabularies is not None:
        data.load_vocabularies(vocabularies)
    data.setup()
    try:
        module = spec.from_data(section(cfg, "task"), section(cfg, "model"), section(cfg, "attention"), data)
        module.bind_data(data)
    except (ImportError, ValueError) as e:  # e.g. model.encoder=resnet without torchvision
        raise ConfigError(str(e)) from e
    return data, module


def check_devices(cfg: DictConfig) -> None:
    """The accelerator and device count the trainer section asks for exist here (one line if not)."""
    import torch

    accelerator, devices = str(cfg.trainer.accelerator), cfg.trainer.devices
    if accelerator in ("gpu", "cuda"):
        available = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if not available:
            raise ConfigError(
                f"trainer.accelerator={accelerator}, but CUDA sees no GPU here "
                "(torch.cuda.is_available() is False); use trainer=cpu"
            )
        if isinstance(devices, int) and devices > available:
            raise ConfigError(f"trainer.devices={devices}, but CUDA sees {available} GPU(s) here")
    if accelerator == "mps" and not torch.backends.mps.is_available():
        raise ConfigError("trainer.accelerator=mps, but MPS is not available here; use trainer=cpu")


def stopping_rule(cfg: DictConfig) -> tuple[str, str]:
    """The metric early stopping (and the convergence record) watches, and whether higher is better."""
    spec = TASKS[cfg.task.name]
    task_metric, task_mode = spec.monitor, spec.mode
    monitor = cfg.early_stopping.monitor or task_metric
    if monitor == task_metric:
        return monitor, task_mode
    lower_is_better = monitor.rsplit("/", 1)[-1] in ("loss", "nll", "ppl") or "latency" in monitor
    return monitor, "min" if lower_is_better else "max"


def build_trainer(
    cfg: DictConfig, logger: Any, callbacks: list[Callback] | None = None, environment: ClusterEnvironment | None = None
) -> L.Trainer:
    """The Trainer every run uses: the ``trainer`` section plus the project's callbacks (divergence
    guard, early stopping and the convergence record, stability and speed monitors, progress bar,
    attention pictures, best checkpoint); ``environment`` pins where the processes' ranks come from
    (default: Lightning detects it — Slurm's under ``srun``, torchrun's, or its own)."""
    spec = TASKS[cfg.task.name]
    trainer_kwargs = section(cfg, "trainer")
    stop = cfg.early_stopping
    stop_metric, stop_mode = stopping_rule(cfg)
    all_callbacks = [StopAtBatchBoundaries(), DivergenceGuard(cfg.stability.max_loss), *(callbacks or [])]
    all_callbacks.append(
        Convergence(
            stop_metric,
            stop_mode,
            stop.patience,
            min_delta=stop.min_delta,
            loss_monitor=stop.loss_monitor,
            loss_min_delta=stop.loss_min_delta,
            stop=stop.enabled,
        )
    )
    if cfg.stability.monitor:
        all_callbacks.append(StabilityMonitor(cfg.stability.spike_factor, cfg.stability.spike_window))
        all_callbacks.append(EstimatorVariance(cfg.stability.estimator_every, cfg.stability.estimator_samples))
    if cfg.speed.monitor:
        all_callbacks.append(SpeedMonitor())
    if cfg.task.get("lr_schedule", "constant") != "constant" and logger:
        all_callbacks.append(LearningRateMonitor(logging_interval="epoch"))  # logged as lr-Adam, each epoch
    if trainer_kwargs["enable_progress_bar"]:
        all_callbacks.append(ProgressBar())
    if cfg.task.get("attention_pictures_every", 0) > 0 and cfg.task.get("attention_pictures", 0) > 0:
        all_callbacks.append(AttentionPictures(cfg.task.attention_pictures_every, cfg.task.attention_pictures))
    if trainer_kwargs["enable_checkpointing"]:
        # best.ckpt is what test and evaluate read; last.ckpt, every epoch, is what train --resume (and a sweep's
        # retry of a dead trial) continues from. Its own callback: a monitored one writes "last" only in the epochs
        # that improved the metric, so a run on a plateau would resume from before it
        all_callbacks.append(
            ModelCheckpoint(monitor=spec.monitor, mode=spec.mode, filename="best", auto_insert_metric_name=False)
        )
        all_callbacks.append(
            ModelCheckpoint(filename=Path(LAST_CHECKPOINT).stem, save_top_k=1, enable_version_counter=False)
        )
    # absolute, so that the checkpoint folder a checkpoint records is the same wherever train --resume runs
    root = str(Path(cfg.output_dir).resolve())
    plugins = [environment] if environment is not None else None
    return L.Trainer(**trainer_kwargs, logger=logger, callbacks=all_callbacks, default_root_dir=root, plugins=plugins)


def run_tags(cfg: DictConfig, attention: Any = None) -> dict[str, str]:
    """What identifies a run; with its built ``attention`` mechanism, also what the mechanism is (its traits)."""
    return {
        T.TASK: cfg.task.name,
        T.ATTENTION: cfg.attention.mechanism,
        T.SEED: str(cfg.seed),
        T.DATA: cfg.choices.data,
        **({T.EXPERIMENT: cfg.choices[EXPERIMENT]} if EXPERIMENT in cfg.choices else {}),
        T.VERSION: __version__,
        T.HEADLINE_METRIC: TASKS[cfg.task.name].headline,
        T.VALIDATION_METRIC: TASKS[cfg.task.name].monitor,
        **(trait_tags(attention.traits()) if attention is not None else {}),
    }


def _make_logger(cfg: DictConfig, uri: str, run_id: str | None, tags: dict[str, str]) -> RunLogger:
    lc = cfg.logger
    ensure_experiment(uri, lc.experiment_name)
    run_name = lc.run_name or f"{cfg.task.name}-{cfg.attention.mechanism}-seed{cfg.seed}"
    return RunLogger(
        experiment_name=lc.experiment_name,
        run_name=run_name,
        tracking_uri=uri,
        tags=source_tags(TRAIN) | tags,
        log_model=lc.log_model,
        run_id=run_id,
    )


class ReseedOnResume(Callback):
    """Lightning restores no random state: a resumed run seeded as it started would replay its first epochs'
    data order, dropout and samples. It draws them from ``seed + epoch`` instead (after its batches were
    formed, so they are the run's own)."""

    def __init__(self, seed: int):
        self.seed = seed

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        L.seed_everything(self.seed + trainer.current_epoch, workers=True, verbose=False)


class StopAtBatchBoundaries(Callback):
    """Safe points for a stop signal (:func:`lightning_attn.processes.stops_at_safe_points`): the start of every
    training, validation and test batch, where no write to the tracking store is half done."""

    def on_train_batch_start(self, *args: Any) -> None:
        check_stop()

    def on_validation_batch_start(self, *args: Any) -> None:
        check_stop()

    def on_test_batch_start(self, *args: Any) -> None:
        check_stop()


def train(
    cfg: DictConfig,
    callbacks: list[Callback] | None = None,
    run_id: str | None = None,
    resumption: Resumption | None = None,
    environment: ClusterEnvironment | None = None,
) -> TrainResult:
    """Train, test the best checkpoint, and record everything in one MLflow run (its life: :class:`TrackedRun`).

    Args:
        cfg: a composed config (:func:`lightning_attn.config.compose`).
        callbacks: extra Lightning callbacks (a sweep adds its pruning callback here).
        run_id: log into this existing MLflow run (a sweep creates each trial's run under its
            study's parent) instead of starting a new one.
        resumption: continue the run ``run_id`` from a checkpoint of it (:func:`resume`).
        environment: Lightning's cluster environment, pinned (a sweep starts its workers and DDP ranks itself:
            under a Slurm allocation Lightning must not take Slurm's tasks for them); default: detected.
    """
    _seed_and_threads(cfg)
    # what can fail fast does before anything is written (a data error must not leave an empty MLflow run behind)
    check_devices(cfg)
    uri = resolve_tracking_uri(cfg.logger.tracking_uri)
    check_tracking_store(uri)
    data, module = build_task(cfg, resumption.vocabularies if resumption else None)
    tags = run_tags(cfg, module.model.attention) | module.run_tags()
    tracked = TrackedRun(cfg, data, tags, existing=run_id is not None, resumption=resumption)
    extra = [tracked, *_run_callbacks(cfg, uri, callbacks, resumption)]
    trainer = build_trainer(cfg, _make_logger(cfg, uri, run_id, tags), extra, environment)
    with stops_as_exit_codes(), tracked.ending_on_errors(trainer, module):
        _fit(trainer, module, data, resumption)
        check_stop()
        metrics = _fit_metrics(trainer)
        best = best_checkpoint(trainer)
        trainer.test(module, datamodule=data, ckpt_path=best, weights_only=True, verbose=False)
        metrics |= _scalars(trainer.callback_metrics)
        if trainer.is_global_zero:
            metrics |= _measure_speed(cfg, data, module, trainer.logger)
            trainer.logger.finalize("success")
    outcome = next(c for c in trainer.callbacks if isinstance(c, Convergence)).outcome
    return TrainResult(trainer.logger.run_id, uri, metrics, best, outcome.reason if outcome else None)


def _seed_and_threads(cfg: DictConfig) -> None:
    L.seed_everything(cfg.seed, workers=True, verbose=False)
    if cfg.threads > 0:
        import torch

        torch.set_num_threads(cfg.threads)


def _run_callbacks(
    cfg: DictConfig, uri: str, callbacks: list[Callback] | None, resumption: Resumption | None
) -> list[Callback]:
    """The caller's callbacks, and those a resumption or a remote store adds."""
    extra = [*(callbacks or []), *([ReseedOnResume(cfg.seed)] if resumption else [])]
    if cfg.trainer.enable_checkpointing and cfg.logger.upload_checkpoints and uploads(uri):
        extra.append(CheckpointUpload(cfg.logger.checkpoint_upload_max_mb))  # every host can evaluate and resume
    return extra


def _fit(trainer: L.Trainer, module: L.LightningModule, data: Any, resumption: Resumption | None) -> None:
    """``trainer.fit``, from the resumption's checkpoint if any (loaded with weights_only=True)."""
    with warnings.catch_warnings():
        if resumption:  # the folder holds the run's own checkpoints: that is what resuming means
            warnings.filterwarnings("ignore", "Checkpoint directory .* exists and is not empty")
        ckpt_path = str(resumption.checkpoint) if resumption else None
        trainer.fit(module, datamodule=data, ckpt_path=ckpt_path, weights_only=True)


def _fit_metrics(trainer: L.Trainer) -> dict[str, float]:
    """Fit's last metrics and the convergence record's (test replaces callback_metrics: taken before it)."""
    metrics = _scalars(trainer.callback_metrics)
    record = next(c for c in trainer.callbacks if isinstance(c, Convergence))
    return metrics | (record.outcome.metrics() if record.outcome is not None else {})


def resume(run_id: str, overrides: list[str] | None = None, callbacks: list[Callback] | None = None) -> TrainResult:
    """Continue a stopped (or finished) run where it ended: ``lightning-attn train --resume RUN_ID [key=value ...]``.

    The run's own record is all it needs: its config, its vocabularies and its last checkpoint (``last.ckpt``,
    else the best one), a full training checkpoint from which Lightning restores the weights, the optimiser and
    learning-rate schedule, the epoch count and early stopping's history. Training goes on into the same MLflow
    run, its metrics continuing at the steps where they stopped, until early stopping or ``trainer.max_epochs``;
    then the best checkpoint is tested as in :func:`train`. ``dotted.key=value`` changes the config first (e.g.
    ``trainer.max_epochs=20`` to train longer, ``threads=1``); ``logger.tracking_uri=URI`` names the store that
    holds the run. The run's params keep the values it started with; its ``resumed`` tag records each resumption.
    ``callbacks`` are extra Lightning callbacks, as for :func:`train`.

    Raises:
        RunRecordError: no such run, or it has no config, vocabularies or checkpoint (one line).
        ConfigError: a change that does not fit (a group such as ``attention=``, an unknown key).
    """
    import tempfile

    from .saved_runs import open_run, resume_checkpoint, run_config, run_vocabularies

    changes = list(overrides or [])
    given_uri = next((o.partition("=")[2] for o in changes if o.startswith("logger.tracking_uri=")), None)
    client, run, uri = open_run(run_id, given_uri)
    with tempfile.TemporaryDirectory() as tmp:
        checkpoint = resume_checkpoint(client, run, Path(tmp) / "checkpoint")
        cfg = run_config(client, run_id, Path(tmp), changes)
        cfg.logger.tracking_uri = uri  # the saved config has it masked, or relative to where the run started
        folder = checkpoint.resolve().parent  # <output_dir>/<experiment id>/<run id>/checkpoints, Lightning's layout
        if folder.name == "checkpoints" and folder.parent.name == run_id:
            # the same folder again, wherever this runs from: Lightning's checkpointing keeps its best-so-far
            # only when the folder is the one it recorded
            cfg.output_dir = str(folder.parents[2])
        vocabularies = run_vocabularies(client, run_id, Path(tmp))
        return train(cfg, callbacks, run_id=run_id, resumption=Resumption(checkpoint, vocabularies, changes))


def _measure_speed(cfg: DictConfig, data: Any, module: Any, logger: MLFlowLogger) -> dict[str, float]:
    """The tested model's latency (diagnostics, taken where training ran), logged; a stop before or after."""
    check_stop()
    s = cfg.speed
    speed = inference_latency(
        module,
        data.splits["test"],
        type(data).collate,
        batch_size=cfg.data.batch_size,
        n_single=s.latency_calls_b1,
        n_batches=s.latency_calls_batch,
        warmup=s.latency_warmup,
    )
    speed["speed/params"] = float(sum(p.numel() for p in module.parameters()))
    check_stop()
    logger.log_metrics(speed)
    return speed


def _scalars(metrics: dict) -> dict[str, float]:
    return {k: float(v) for k, v in metrics.items() if v.numel() == 1}


@dataclass
class SeedsResult:
    """A multi-seed run: the parent's id, each finished seed's result, ``{metric: SeedStats}`` over them, and
    why each failed seed failed."""

    parent_run_id: str
    tracking_uri: str
    runs: dict[int, TrainResult]
    stats: dict[str, Any]
    failures: dict[int, str] = field(default_factory=dict)


def train_seeds(cfg: DictConfig) -> SeedsResult:
    """Train one model per seed in ``cfg.seeds``, one after another, each a child of one parent run
    that receives ``<metric>_mean``, ``_std`` and ``_ci95`` (95 % CI half-width, Student's t) of every
    final metric the seeds that finished share.

    A seed whose run fails (diverges, crashes) is recorded — its run FAILED with the reason — and the
    others go on; the parent is FINISHED when some seed finished, FAILED when none did. A stop (Ctrl+C,
    SIGTERM) ends them all."""
    from mlflow import MlflowClient

    from .tracking.seeds import summarise_seeds

    seeds = list(cfg.seeds)
    uri = resolve_tracking_uri(cfg.logger.tracking_uri)
    experiment_id = ensure_experiment(uri, cfg.logger.experiment_name)
    client = MlflowClient(uri)
    name = cfg.logger.run_name or f"{cfg.task.name}-{cfg.attention.mechanism}"
    tags = run_tags(cfg) | {T.SEED: ",".join(map(str, seeds)), T.ROLE: T.ROLE_SEEDS} | source_tags(TRAIN)
    tags[T.NOTE] = (
        f"**{cfg.attention.mechanism}** attention on **{cfg.task.name}** ({cfg.choices.data} data), "
        f"trained once per seed ({', '.join(map(str, seeds))}): each child run is one seed; this run "
        "holds the mean, std and 95 % CI of their final metrics."
    )
    parent = client.create_run(experiment_id, run_name=f"{name}-seeds", tags=tags).info.run_id
    runs: dict[int, TrainResult] = {}
    failures: dict[int, str] = {}
    try:
        log_params(client, parent, flatten(cfg))
        for i, seed in enumerate(seeds, start=1):
            check_stop()
            one = cfg.copy()
            one.seed, one.seeds = seed, []
            child_tags = run_tags(one) | {T.PARENT: parent} | source_tags(TRAIN)
            child = client.create_run(experiment_id, run_name=f"{name}-seed{seed}", tags=child_tags).info.run_id
            log.info("seed %d (%d of %d)", seed, i, len(seeds))
            try:
                runs[seed] = train(one, run_id=child)
            except Exception as e:  # a failed seed is a result (its run says why): the others go on
                failures[seed] = failure_reason(e)
                log.warning("seed %d failed: %s", seed, failures[seed])
                if client.get_run(child).info.status == "RUNNING":  # it failed before training started
                    client.set_tag(child, T.FAILURE_REASON, failures[seed])
                    client.set_terminated(child, "FAILED")
        summary = summarise_seeds(client, parent, [r.metrics for r in runs.values()])
        record_children_datasets(client, experiment_id, parent)
        if failures:
            first = next(iter(failures.items()))
            why = f"{len(failures)} of {len(seeds)} seed(s) failed; the first, seed {first[0]}: {first[1]}"
            client.set_tag(parent, T.FAILURE_REASON, failure_reason(why))
        client.set_terminated(parent, "FINISHED" if runs else "FAILED")
    except BaseException as e:
        client.set_tag(parent, T.FAILURE_REASON, failure_reason(e))
        client.set_terminated(parent, "KILLED" if isinstance(e, (KeyboardInterrupt, SystemExit)) else "FAILED")
        raise
    return SeedsResult(parent, uri, runs, summary, failures)
