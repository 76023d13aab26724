"""Score a trained run again, without retraining: ``lightning-attn evaluate RUN_ID [key=value ...]``.

The run's own record is all it needs: its config (the ``config.yaml`` artifact), its vocabularies (the
``vocabularies/`` artifacts) and its best checkpoint (the path in its ``best_checkpoint`` tag, or the
copy ``logger.log_model=true`` uploaded), loaded with ``torch.load(weights_only=True)``. It decodes the
configured test split, another split named with ``split=NAME``, or an aligned file pair
(``src=FILE ref=FILE``), exactly as the run's own test did (same decoding, same batches), and logs the
scores and the predictions to a child run of the evaluated one. ``dotted.key=value`` arguments change
the run's config first (``task.beam_size=1``, ``data.root=/moved/here``).
"""

from __future__ import annotations

import logging
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import lightning as L

from .config import ConfigError, flatten, section
from .saved_runs import RunRecordError, load_trained, open_run
from .tracking import log_params
from .tracking import tags as T
from .tracking.datasets import evaluation_input, log_datasets
from .tracking.provenance import EVALUATE, source_tags

log = logging.getLogger(__name__)

#: arguments of ``evaluate`` that are not config keys
SPLIT, SOURCE_FILE, REFERENCE_FILE = "split", "src", "ref"


#: the run cannot be evaluated (no such run, no checkpoint, no vocabularies): one line says why
EvaluateError = RunRecordError


@dataclass
class EvaluateResult:
    run_id: str  # the evaluated run
    child_run_id: str  # where the scores and predictions were logged
    evaluated: str  # the split name, or "source -> reference" file names
    metrics: dict[str, float] = field(default_factory=dict)
    signature: str | None = None  # sacreBLEU's, for translation


@dataclass
class EvaluateRequest:
    """What to decode and with which changes to the run's config."""

    split: str | None = None
    files: tuple[str, str] | None = None
    overrides: list[str] = field(default_factory=list)

    @classmethod
    def parse(cls, arguments: list[str]) -> EvaluateRequest:
        """``split=NAME``, ``src=FILE ref=FILE`` and ``dotted.key=value`` config changes."""
        request, files = cls(), {}
        for item in arguments:
            key, sep, value = item.partition("=")
            if not sep:
                raise ConfigError(
                    f"cannot read {item!r}: expected key=value (split=NAME, src=FILE ref=FILE, "
                    "or a config key such as task.beam_size=1)"
                )
            if key == SPLIT:
                request.split = value
            elif key in (SOURCE_FILE, REFERENCE_FILE):
                files[key] = value
            else:
                request.overrides.append(item)
        if files:
            if set(files) != {SOURCE_FILE, REFERENCE_FILE}:
                raise ConfigError("a file pair needs both src=FILE and ref=FILE")
            if request.split:
                raise ConfigError("give split=NAME or src=FILE ref=FILE, not both")
            request.files = (files[SOURCE_FILE], files[REFERENCE_FILE])
        return request


def evaluate(run_id: str, arguments: list[str] | None = None, tracking_uri: str | None = None) -> EvaluateResult:
    """Decode with a trained run's best checkpoint and log the scores to a child run.

    Args:
        run_id: the MLflow run to evaluate.
        arguments: ``split=NAME``, ``src=FILE ref=FILE`` and ``dotted.key=value`` changes to its config.
        tracking_uri: the MLflow store (default: ``$MLFLOW_TRACKING_URI``, else ``sqlite:///mlflow.db``).

    Raises:
        EvaluateError: no such run, or it has no checkpoint or vocabularies.
        ConfigError: an argument that does not fit (one line).
    """
    from lightning.pytorch.loggers import MLFlowLogger

    request = EvaluateRequest.parse(arguments or [])
    client, run, uri = open_run(run_id, tracking_uri)
    with tempfile.TemporaryDirectory() as tmp:
        # 1. the run's config with the requested changes, its vocabularies and checkpoint, the text to decode
        trained = load_trained(
            client, run, Path(tmp), overrides=request.overrides, split=request.split, files=request.files
        )
        cfg, data, module, evaluated = trained.config, trained.data, trained.module, trained.evaluated
        checkpoint = trained.checkpoint
        # 2. decode and score into a child run
        tags = {T.PARENT: run_id, T.ROLE: T.ROLE_EVALUATION, T.EVALUATED_SPLIT: evaluated} | module.run_tags()
        tags |= source_tags(EVALUATE)
        name = f"{run.info.run_name or run_id}-eval-{request.split or ('files' if request.files else 'test')}"
        child = client.create_run(run.info.experiment_id, run_name=name, tags=tags).info.run_id
        params = {"checkpoint": str(checkpoint), "evaluated": evaluated, "overrides": " ".join(request.overrides)}
        log_params(client, child, params | {k: v for k, v in flatten(cfg).items() if k.startswith("task.")})
        scored = evaluation_input(
            section(cfg, "data"), cfg.choices.data, request.split, request.files, len(data.splits["test"])
        )
        log_datasets(client, child, [scored])
        logger = MLFlowLogger(tracking_uri=uri, run_id=child)
        trainer = L.Trainer(
            accelerator=cfg.trainer.accelerator,
            devices=1,
            logger=logger,
            enable_checkpointing=False,
            enable_model_summary=False,
            enable_progress_bar=cfg.trainer.enable_progress_bar,
        )
        try:
            trainer.test(module, datamodule=data, verbose=False)
            metrics = {k: float(v) for k, v in trainer.callback_metrics.items() if v.numel() == 1}
            client.log_text(child, "\n".join(module.test_hypotheses) + "\n", "predictions/test.hyp.txt")
            refs = ["\t".join(r) if isinstance(r, list) else r for r in module.test_references]
            client.log_text(child, "\n".join(refs) + "\n", "predictions/test.ref.txt")
            client.set_terminated(child, "FINISHED")
        except BaseException as e:
            client.set_tag(child, T.FAILURE_REASON, T.failure_reason(e))
            client.set_terminated(child, "KILLED" if isinstance(e, (KeyboardInterrupt, SystemExit)) else "FAILED")
            raise
    return EvaluateResult(run_id, child, evaluated, metrics, module.run_tags().get(T.BLEU_SIGNATURE))
