"""A tracked run's life, as a Lightning callback (:class:`TrackedRun`): what an MLflow run records when its
training starts, how it ends when training fails or is stopped, and what it keeps once its test has run.

``train``, each seed of ``train seeds=…``, every sweep trial and ``train --resume`` go through it, so a run is
recorded, ended and kept the same way whichever of them started it. Rank 0 only: the logger is a no-op on the
other ranks of a DDP run.
"""

from __future__ import annotations

import signal
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lightning as L
import optuna
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.loggers import MLFlowLogger
from omegaconf import DictConfig

from ..config import flatten, section, to_yaml
from ..private_apis import mlflow_run_started
from ..processes import stop_signum
from . import tags as T
from .datasets import log_datasets, training_inputs
from .mlflow import mask_params
from .secrets import mask_secrets
from .tags import failure_reason

KILLED, FAILED = "KILLED", "FAILED"  # MLflow's run statuses for a stopped and a failed run


@dataclass
class Resumption:
    """Where a run continues from (``lightning_attn.train.resume`` builds it)."""

    checkpoint: Path  # a full training checkpoint of the run
    vocabularies: Path  # the run's vocabularies, so that its ids mean the same words
    changes: list[str]  # the ``dotted.key=value`` changes to the run's config, for the record
    # False: a new run continues another's training (a sweep's retry of a trial whose worker died), so it
    # records its params and config as a new run does, and says what it continues
    same_run: bool = True


class RunLogger(MLFlowLogger):
    """Lightning's MLflow logger, ending its run with the status :class:`TrackedRun` chose: Lightning finalizes
    every interrupted run as failed, a stopped one included."""

    ending: str | None = None

    def finalize(self, status: str = "success") -> None:
        super().finalize(self.ending or status)


class TrackedRun(Callback):
    """The life of the MLflow run ``logger`` (a :class:`RunLogger`) writes to.

    * fit start: the run's identity tags (where the run was created elsewhere: a sweep's trial run), its params,
      resolved config, vocabularies and datasets; a resumed run is reopened instead.
    * an exception (in Lightning's loops, or in the block :meth:`ending_on_errors` guards): the reason, as a tag —
      a pruned trial's, a failure's or a stop's —, and the run ended FAILED, or KILLED when it was stopped
      (Ctrl+C, SIGTERM, a stop signal, a pruned trial), with its best checkpoint so far named for ``evaluate``.
    * test end: the best checkpoint and the test predictions beside their references (what a paired test needs).
    """

    def __init__(
        self, cfg: DictConfig, data: Any, tags: dict[str, str], *, existing: bool, resumption: Resumption | None
    ):
        self.cfg, self.data, self.tags = cfg, data, tags
        self.existing = existing  # the run was created before (a sweep's trial run): MLFlowLogger tags only its own
        self.resumption = resumption
        self.ended = False

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not trainer.is_global_zero:
            return
        logger = trainer.logger
        if trainer.world_size > 1:
            import torch.distributed as dist

            logger.experiment.set_tag(logger.run_id, T.DDP_BACKEND, str(dist.get_backend()))
        if self.resumption is not None and self.resumption.same_run:
            _reopen(logger, self.resumption, self.cfg)
            return
        client, run_id = logger.experiment, logger.run_id
        for key, value in self.tags.items() if self.existing else ():
            client.set_tag(run_id, key, value)
        logger.log_hyperparams(mask_params(flatten(self.cfg)))
        client.log_text(run_id, mask_secrets(to_yaml(self.cfg)), "config.yaml")
        with tempfile.TemporaryDirectory() as folder:  # the ids' words: evaluate needs them
            self.data.save_vocabularies(folder)
            client.log_artifacts(run_id, folder, T.VOCABULARIES)
        sizes = {split: len(examples) for split, examples in self.data.splits.items()}  # the examples it used
        log_datasets(client, run_id, training_inputs(section(self.cfg, "data"), self.cfg.choices.data, sizes))
        if self.resumption is not None:  # a new run that takes over another's training
            client.set_tag(run_id, T.RESUMED, "; ".join(self.resumption.changes)[-T.REASON_LIMIT :])

    def on_exception(self, trainer: L.Trainer, pl_module: L.LightningModule, exception: BaseException) -> None:
        self.ended = True
        logger = trainer.logger
        if not (trainer.is_global_zero and mlflow_run_started(logger)):
            return
        # Ctrl+C reaches here as SystemExit from Lightning's graceful shutdown; a pruned trial was stopped on
        # purpose, it did not fail
        stopped = isinstance(exception, (KeyboardInterrupt, SystemExit, optuna.TrialPruned))
        if isinstance(exception, optuna.TrialPruned):
            key, why = T.PRUNED, str(exception)
        else:
            key, why = T.FAILURE_REASON, (_stopped_because(exception) if stopped else exception)
        logger.experiment.set_tag(logger.run_id, key, failure_reason(why))
        best_so_far = best_checkpoint(trainer)
        if stopped and best_so_far:  # a stopped run's best epoch can still be scored: lightning-attn evaluate
            logger.experiment.set_tag(logger.run_id, T.BEST_CHECKPOINT, best_so_far)
        logger.ending = KILLED if stopped else FAILED
        logger.experiment.set_terminated(logger.run_id, logger.ending)

    def on_test_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not trainer.is_global_zero:
            return
        client, run_id = trainer.logger.experiment, trainer.logger.run_id
        if best := best_checkpoint(trainer):
            client.set_tag(run_id, T.BEST_CHECKPOINT, best)
        if trainer.world_size == 1 and pl_module.test_hypotheses:
            client.log_text(run_id, "\n".join(pl_module.test_hypotheses) + "\n", "predictions/test.hyp.txt")
            refs = ["\t".join(r) if isinstance(r, list) else r for r in pl_module.test_references]  # captions: all
            client.log_text(run_id, "\n".join(refs) + "\n", "predictions/test.ref.txt")

    @contextmanager
    def ending_on_errors(self, trainer: L.Trainer, pl_module: L.LightningModule) -> Iterator[None]:
        """The block's errors end the run as an error inside Lightning's loops does (the work around ``fit`` and
        ``test``: checks between them, measurements after them)."""
        try:
            yield
        except BaseException as e:
            if not self.ended:
                self.on_exception(trainer, pl_module, e)
                trainer.logger.finalize("failed")
            raise


def best_checkpoint(trainer: L.Trainer) -> str | None:
    """The absolute path of the best checkpoint so far (None: none, or no checkpointing)."""
    callback = trainer.checkpoint_callback
    path = callback.best_model_path if callback is not None else ""
    return str(Path(path).resolve()) if path else None


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
    signum = stop_signum(e)
    if signum is None:
        return e
    return "interrupted by Ctrl+C (SIGINT)" if signum == signal.SIGINT else f"stopped by {signal.Signals(signum).name}"
