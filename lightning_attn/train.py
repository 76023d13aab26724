"""One training run: config -> data -> model -> Lightning Trainer -> MLflow run.

The CLI's ``train`` command and (later) every sweep trial call :func:`train`. Order matters for
"bad input loses nothing": the data is loaded and checked *before* an MLflow run exists, and a
run that fails or is interrupted is closed as FAILED/KILLED instead of being left RUNNING.
"""

from __future__ import annotations

import logging
import signal
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import lightning as L
import optuna
from lightning.fabric.plugins.environments import ClusterEnvironment
from lightning.pytorch.callbacks import Callback, LearningRateMonitor, ModelCheckpoint
from lightning.pytorch.loggers import MLFlowLogger
from lightning.pytorch.utilities.exceptions import SIGTERMException
from omegaconf import DictConfig

from . import __version__
from .config import EXPERIMENT, ConfigError, flatten, section, to_yaml
from .private_apis import mlflow_run_started
from .processes import StopSignal, check_stop
from .saved_runs import LAST_CHECKPOINT
from .tasks import TASKS
from .tracking import (
    check_tracking_store,
    ensure_experiment,
    log_params,
    mask_params,
    mask_secrets,
    resolve_tracking_uri,
)
from .tracking import tags as T
from .tracking.checkpoints import CheckpointUpload, uploads
from .tracking.convergence import Convergence
from .tracking.datasets import log_datasets, record_children_datasets, training_inputs
from .tracking.estimator import EstimatorVariance
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
        all_callbacks.append(LearningRateMonitor(logging_interval="epoch"))  # logged as lr-Adam
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


def _make_logger(cfg: DictConfig, uri: str, run_id: str | None, tags: dict[str, str]) -> MLFlowLogger:
    lc = cfg.logger
    ensure_experiment(uri, lc.experiment_name)
    run_name = lc.run_name or f"{cfg.task.name}-{cfg.attention.mechanism}-seed{cfg.seed}"
    return MLFlowLogger(
        experiment_name=lc.experiment_name,
        run_name=run_name,
        tracking_uri=uri,
        tags=source_tags(TRAIN) | tags,
        log_model=lc.log_model,
        run_id=run_id,
    )


@dataclass
class Resumption:
    """Where :func:`train` continues a run from (:func:`resume` builds it)."""

    checkpoint: Path  # a full training checkpoint of the run
    vocabularies: Path  # the run's vocabularies, so that its ids mean the same words
    changes: list[str]  # the ``dotted.key=value`` changes to the run's config, for the record
    # False: a new run continues another's training (a sweep's retry of a trial whose worker died), so it
    # records its params and config as a new run does, and says what it continues
    same_run: bool = True


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
    """Train, test the best checkpoint, and record everything in one MLflow run.

    Args:
        cfg: a composed config (:func:`lightning_attn.config.compose`).
        callbacks: extra Lightning callbacks (a sweep adds its pruning callback here).
        run_id: log into this existing MLflow run (a sweep creates each trial's run under its
            study's parent) instead of starting a new one.
        resumption: continue the run ``run_id`` from a checkpoint of it (:func:`resume`).
        environment: Lightning's cluster environment, pinned (a sweep starts its workers and DDP ranks itself:
            under a Slurm allocation Lightning must not take Slurm's tasks for them); default: detected.
    """
    L.seed_everything(cfg.seed, workers=True, verbose=False)
    if cfg.threads > 0:
        import torch

        torch.set_num_threads(cfg.threads)
    # 1. what can fail fast does, before anything is prepared or written: devices, the tracking store;
    # then data and model: a data error must not leave an empty MLflow run behind
    check_devices(cfg)
    uri = resolve_tracking_uri(cfg.logger.tracking_uri)
    check_tracking_store(uri)
    data, module = build_task(cfg, resumption.vocabularies if resumption else None)
    tags = run_tags(cfg, module.model.attention) | module.run_tags()
    logger = _make_logger(cfg, uri, run_id, tags)
    extra = [*(callbacks or []), *([ReseedOnResume(cfg.seed)] if resumption else [])]
    if cfg.trainer.enable_checkpointing and cfg.logger.upload_checkpoints and uploads(uri):
        extra.append(CheckpointUpload(cfg.logger.checkpoint_upload_max_mb))  # every host can evaluate and resume
    trainer = build_trainer(cfg, logger, extra, environment)
    checkpointing = trainer.checkpoint_callback is not None
    try:
        # 2. params, the resolved config; rank 0 only (the logger is a no-op elsewhere). A resumed run has them
        if trainer.is_global_zero and resumption is not None and resumption.same_run:
            _reopen(logger, resumption, cfg)
        elif trainer.is_global_zero:
            if run_id is not None:  # MLFlowLogger only tags the runs it creates
                for key, value in tags.items():
                    logger.experiment.set_tag(run_id, key, value)
            logger.log_hyperparams(mask_params(flatten(cfg)))
            logger.experiment.log_text(logger.run_id, mask_secrets(to_yaml(cfg)), "config.yaml")
            _log_vocabularies(logger, data)
            sizes = {split: len(examples) for split, examples in data.splits.items()}  # the examples it used
            inputs = training_inputs(section(cfg, "data"), cfg.choices.data, sizes)
            log_datasets(logger.experiment, logger.run_id, inputs)
            if resumption is not None:  # a new run that takes over another's training
                logger.experiment.set_tag(logger.run_id, T.RESUMED, "; ".join(resumption.changes)[-T.REASON_LIMIT :])
        # 3. fit, then test the best checkpoint (loaded with weights_only=True)
        ckpt_path = str(resumption.checkpoint) if resumption else None
        with warnings.catch_warnings():
            if resumption:  # the folder holds the run's own checkpoints: that is what resuming means
                warnings.filterwarnings("ignore", "Checkpoint directory .* exists and is not empty")
            trainer.fit(module, datamodule=data, ckpt_path=ckpt_path, weights_only=True)
        if trainer.is_global_zero and trainer.world_size > 1:
            import torch.distributed as dist

            logger.experiment.set_tag(logger.run_id, T.DDP_BACKEND, str(dist.get_backend()))
        check_stop()
        metrics = _scalars(trainer.callback_metrics)  # test replaces callback_metrics: keep fit's
        record = next(c for c in trainer.callbacks if isinstance(c, Convergence))
        if record.outcome is not None:
            metrics |= record.outcome.metrics()
        best_path = trainer.checkpoint_callback.best_model_path if checkpointing else ""
        ckpt = best_path or None  # the best checkpoint's path (ckpt_path="best" is ambiguous with two callbacks)
        trainer.test(module, datamodule=data, ckpt_path=ckpt, weights_only=True, verbose=False)
        metrics |= _scalars(trainer.callback_metrics)
        best = str(Path(best_path).resolve()) if best_path else None
        if trainer.is_global_zero:
            check_stop()
            speed = _measure_speed(cfg, data, module)
            check_stop()
            logger.log_metrics(speed)
            metrics |= speed
            _log_outcome(logger, module, trainer, best)
            logger.finalize("success")
    except BaseException as e:
        # Ctrl+C reaches here as SystemExit from Lightning's graceful shutdown; a pruned sweep trial
        # was stopped on purpose, it did not fail
        stopped = isinstance(e, (KeyboardInterrupt, SystemExit, optuna.TrialPruned))
        if trainer.is_global_zero and mlflow_run_started(logger):
            pruned = isinstance(e, optuna.TrialPruned)
            key, why = (T.PRUNED, str(e)) if pruned else (T.FAILURE_REASON, _stopped_because(e) if stopped else e)
            logger.experiment.set_tag(logger.run_id, key, failure_reason(why))
            best_so_far = trainer.checkpoint_callback.best_model_path if checkpointing else ""
            if stopped and best_so_far:  # a stopped run's best epoch can still be scored: lightning-attn evaluate
                logger.experiment.set_tag(logger.run_id, T.BEST_CHECKPOINT, str(Path(best_so_far).resolve()))
            logger.experiment.set_terminated(logger.run_id, "KILLED" if stopped else "FAILED")
        if isinstance(e, SIGTERMException):  # Lightning ends a SIGTERMed fit with exit code 0: say it was stopped
            raise SystemExit(128 + signal.SIGTERM) from None
        if (signalled := _stop_signal(e)) is not None:  # Lightning's graceful Ctrl+C exits 1, as a failure would
            raise SystemExit(signalled.exit_code) from None
        if isinstance(e, KeyboardInterrupt) or isinstance(e.__context__, KeyboardInterrupt):
            raise SystemExit(128 + signal.SIGINT) from None  # Lightning's graceful Ctrl+C exits 1, as a failure would
        raise
    return TrainResult(logger.run_id, uri, metrics, best, record.outcome.reason if record.outcome else None)


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

    from mlflow import MlflowClient

    from .saved_runs import get_run, resume_checkpoint, run_config, run_vocabularies

    changes = list(overrides or [])
    given_uri = next((o.partition("=")[2] for o in changes if o.startswith("logger.tracking_uri=")), None)
    uri = resolve_tracking_uri(given_uri)
    check_tracking_store(uri)
    client = MlflowClient(uri)
    run = get_run(client, run_id, uri)
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


def _reopen(logger: MLFlowLogger, resumption: Resumption, cfg: DictConfig) -> None:
    """Mark a resumed run RUNNING again, without the reason it stopped, and record the resumption; the config
    artifact becomes the one training goes on with (``evaluate`` reads it)."""
    client, run_id = logger.experiment, logger.run_id
    run = client.get_run(run_id)
    client.update_run(run_id, status="RUNNING")
    if T.FAILURE_REASON in run.data.tags:
        client.delete_tag(run_id, T.FAILURE_REASON)
    earlier = run.data.tags.get(T.RESUMED)
    changes = " ".join(mask_secrets(c) for c in resumption.changes) or "no changes"
    this = f"from {resumption.checkpoint.name} ({changes})"
    client.set_tag(run_id, T.RESUMED, (f"{earlier}; {this}" if earlier else this)[-T.REASON_LIMIT :])
    client.log_text(run_id, mask_secrets(to_yaml(cfg)), "config.yaml")


def _stopped_because(e: BaseException) -> BaseException | str:
    """A stop in words: Lightning's SIGTERMException and the SystemExit after Ctrl+C carry no message, and
    "SIGTERMException: " says nothing to whoever reads the run's failure_reason. Any other stop as it is."""
    if isinstance(e, SIGTERMException):
        return "stopped by SIGTERM"
    if (signalled := _stop_signal(e)) is not None:
        return "interrupted by Ctrl+C (SIGINT)" if signalled.signum == signal.SIGINT else f"stopped by {signalled}"
    if isinstance(e, KeyboardInterrupt) or isinstance(e.__context__, KeyboardInterrupt):
        return "interrupted by Ctrl+C (SIGINT)"
    return e


def _stop_signal(e: BaseException) -> StopSignal | None:
    """The stop signal behind ``e``: itself, or what Lightning's graceful shutdown turned into SystemExit(1)."""
    return next((x for x in (e, e.__context__) if isinstance(x, StopSignal)), None)


def _log_vocabularies(logger: MLFlowLogger, data: Any) -> None:
    """The vocabularies the model's ids refer to, as artifacts: ``lightning-attn evaluate`` needs them."""
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        data.save_vocabularies(folder)
        logger.experiment.log_artifacts(logger.run_id, folder, T.VOCABULARIES)


def _measure_speed(cfg: DictConfig, data: Any, module: Any) -> dict[str, float]:
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
    return speed


def _scalars(metrics: dict) -> dict[str, float]:
    return {k: float(v) for k, v in metrics.items() if v.numel() == 1}


def _log_outcome(logger: MLFlowLogger, module: Any, trainer: L.Trainer, best: str | None) -> None:
    client, run_id = logger.experiment, logger.run_id
    if best:
        client.set_tag(run_id, T.BEST_CHECKPOINT, best)
    if trainer.world_size == 1 and module.test_hypotheses:
        # test predictions beside the references: what a paired significance test needs later
        client.log_text(run_id, "\n".join(module.test_hypotheses) + "\n", "predictions/test.hyp.txt")
        refs = ["\t".join(r) if isinstance(r, list) else r for r in module.test_references]  # captions: all refs
        client.log_text(run_id, "\n".join(refs) + "\n", "predictions/test.ref.txt")


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
