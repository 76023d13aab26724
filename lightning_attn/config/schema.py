"""The schema of the sections every run has, whatever its task: trainer, logger, stability, speed, early
stopping, and the run itself. The group schemas live beside their code (each task's, model's, data's and
mechanism's config dataclass next to the class it configures) and reach composition through their
registries (:mod:`.compose`). These dataclasses are the single source of every default."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any


@dataclass
class TrainerConfig:
    """Passed to ``lightning.Trainer`` as keyword arguments."""

    accelerator: str = "auto"  # Lightning's: a GPU where there is one, else the CPU
    devices: Any = 1
    strategy: str = "auto"
    num_nodes: int = 1
    precision: str = "32-true"
    max_epochs: int = 30  # the cap: early_stopping ends a run sooner, once it has converged
    max_time: str | None = None  # "DD:HH:MM:SS"
    gradient_clip_val: float | None = 1.0
    accumulate_grad_batches: int = 1
    limit_train_batches: Any = None
    limit_val_batches: Any = None
    limit_test_batches: Any = None
    log_every_n_steps: int = 50
    deterministic: bool = False
    enable_progress_bar: bool = True
    enable_model_summary: bool = True
    enable_checkpointing: bool = True


@dataclass
class MLflowLoggerConfig:
    """MLflow tracking through Lightning's ``MLFlowLogger``."""

    kind: str = "mlflow"
    tracking_uri: str | None = None  # None: $MLFLOW_TRACKING_URI, else sqlite:///mlflow.db in the working dir
    # $MLFLOW_EXPERIMENT_NAME, as MLflow itself reads it, else "lightning-attn"
    experiment_name: str = field(default_factory=lambda: os.environ.get("MLFLOW_EXPERIMENT_NAME") or "lightning-attn")
    run_name: str | None = None
    log_model: bool = False  # also upload the best checkpoint as an MLflow artifact (Lightning's own, at the end)
    # tracking to a server: upload the best and last checkpoints as run artifacts after every epoch, so that
    # evaluate and train --resume work from any host (a larger checkpoint is not uploaded)
    upload_checkpoints: bool = True
    checkpoint_upload_max_mb: float = 2048


@dataclass
class StabilityConfig:
    """Stability measurements, and when a run counts as diverged (it then stops with the reason recorded)."""

    max_loss: float = 1e4  # a training loss above this (or NaN/inf) stops the run
    monitor: bool = True  # log stability/* (gradient norms, loss spikes) every epoch
    spike_factor: float = 3.0  # a loss above this x the running median counts as a spike
    spike_window: int = 50  # steps in that running median
    # mechanisms that sample (or relax) their choice in training: the variance of the attention gradient
    # over `estimator_samples` samples of the same batch, every `estimator_every` steps (0: never)
    estimator_every: int = 50
    estimator_samples: int = 8


@dataclass
class EarlyStoppingConfig:
    """Train to convergence (Lightning's ``EarlyStopping``, see :mod:`lightning_attn.tracking.convergence`):
    stop once neither the validation metric nor the validation loss has made progress for ``patience``
    epochs; ``trainer.max_epochs`` is only the cap. Every run records how it ended (``run/epochs``,
    ``run/best_epoch``, ``run/converged``, tag ``stop_reason``)."""

    enabled: bool = True  # false: train to trainer.max_epochs (the run still records whether it converged)
    monitor: str | None = None  # default: the task's validation metric (val/bleu, val/bleu4)
    patience: int | None = None  # epochs in a row without progress that make a plateau; default: the task's (TaskSpec)
    min_delta: float = 1.0  # the metric makes progress only by beating its best by more (its units: BLEU points)
    # an epoch whose validation loss still fell counts as progress too: a metric still flat at 0 in the
    # first epochs (hard attention before REINFORCE has learnt) is not a plateau; null: the metric alone
    loss_monitor: str | None = "val/nll"
    loss_min_delta: float = 0.05  # nats below the lowest loss so far


@dataclass
class SpeedConfig:
    """Throughput while training and the inference-latency pass after testing (:mod:`lightning_attn.tracking.speed`)."""

    monitor: bool = True  # log speed/* (throughput, step times, peak memory) every epoch
    latency_calls_b1: int = 20  # timed greedy decodes of one example (0: skip)
    latency_calls_batch: int = 5  # timed greedy decodes of a data.batch_size batch (0: skip)
    latency_warmup: int = 2  # untimed calls before each


@dataclass
class RunConfig:
    """One training run. Group fields hold whichever schema the group choice selected."""

    task: Any = None
    model: Any = None
    attention: Any = None
    data: Any = None
    trainer: Any = None
    logger: Any = None
    stability: StabilityConfig = field(default_factory=StabilityConfig)
    speed: SpeedConfig = field(default_factory=SpeedConfig)
    early_stopping: EarlyStoppingConfig = field(default_factory=EarlyStoppingConfig)
    seed: int = 0
    # torch's intra-op threads for this run; 0: leave torch's choice (one per core; a sweep worker, its share)
    threads: int = 0
    seeds: list[int] = field(default_factory=list)  # e.g. [0,1,2]: one run per seed under a parent with mean/std/CI
    output_dir: str = "outputs"  # checkpoints go to <output_dir>/<mlflow run id>/
    choices: dict[str, str] = field(default_factory=dict)  # filled in: which YAML each group came from


#: the logger group's schemas, by the ``kind`` its YAML names
LOGGERS: dict[str, type] = {"mlflow": MLflowLoggerConfig}
