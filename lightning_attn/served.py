"""A trained translation run as an MLflow model: ``lightning-attn log-model RUN_ID`` (and, by default, after every
``lightning-attn train`` and for the best run of each mechanism a comparison trained).

The model is a ``pyfunc`` (:class:`TranslationModel`) that carries the run's best checkpoint, vocabularies and
config, with a signature: a ``source`` column of sentences in, their translations out, ``beam`` as a parameter.
So ``mlflow.pyfunc.load_model("runs:/RUN_ID/model").predict(pd.DataFrame({"source": ["ein hund läuft"]}))``
translates, and
``mlflow models serve -m runs:/RUN_ID/model --env-manager local`` answers HTTP requests, in an environment where
lightning-attn is installed. It translates exactly as ``lightning-attn predict RUN_ID`` does.
"""

from __future__ import annotations

import logging
import tempfile
import warnings
from pathlib import Path
from typing import Any

import mlflow.pyfunc
import pandas as pd

from . import __version__

MODEL = "model"  # the model's artifact path in its run: runs:/RUN_ID/model


class TranslationModel(mlflow.pyfunc.PythonModel):
    """The pyfunc: the run's model rebuilt from its artifacts once, then sentences in, translations out."""

    def load_context(self, context: Any) -> None:
        from omegaconf import OmegaConf

        from .saved_runs import rebuild

        cfg = OmegaConf.load(context.artifacts["config"])
        self.data, self.module, _ = rebuild(
            cfg, Path(context.artifacts["vocabularies"]), Path(context.artifacts["checkpoint"]), scored=False
        )
        self.beam = int(cfg.task.beam_size)

    def predict(self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None) -> list[str]:
        """``model_input``: a DataFrame with a ``source`` column, a list of sentences, or one sentence;
        ``params``: ``{"beam": N}`` (1: greedy; default: as the run was tested)."""
        from .predict import decode_all

        if hasattr(model_input, "columns"):
            sentences = [str(s) for s in model_input["source"]]
        else:
            sentences = [model_input] if isinstance(model_input, str) else [str(s) for s in model_input]
        beam = int((params or {}).get("beam") or self.beam)
        return decode_all(self.data, self.module, sentences, beam=beam)


def log_model(run_id: str, *, tracking_uri: str | None = None) -> str:
    """Log run ``run_id``'s best checkpoint as an MLflow model into the run (artifact path ``model``); returns its
    URI, ``runs:/RUN_ID/model``.

    Raises:
        RunRecordError: no such run, or it has no config, vocabularies or checkpoint (one line).
        ConfigError: a run of a task this model does not serve (one line).
    """
    from mlflow.models import ModelSignature
    from mlflow.types import ColSpec, ParamSchema, ParamSpec, Schema

    from .config import ConfigError, to_yaml
    from .saved_runs import best_checkpoint, open_run, run_config, run_vocabularies
    from .tracking import tags as T

    client, run, _ = open_run(run_id, tracking_uri)
    task = run.data.tags.get(T.TASK, "")
    if not serves(task):
        raise ConfigError(f"run {run_id} is a {task or 'lightning-attn'} run: an MLflow model serves translation")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        cfg = run_config(client, run_id, folder, [])
        (folder / "config.yaml").write_text(to_yaml(cfg), encoding="utf-8")
        artifacts = {
            "config": str(folder / "config.yaml"),
            "vocabularies": str(run_vocabularies(client, run_id, folder)),
            "checkpoint": str(best_checkpoint(client, run, folder)),
        }
        signature = ModelSignature(
            inputs=Schema([ColSpec("string", "source")]),
            outputs=Schema([ColSpec("string")]),
            params=ParamSchema([ParamSpec("beam", "long", int(cfg.task.beam_size))]),
        )
        saved = folder / MODEL
        # MLflow's notes on pickled models (this one is the class, by reference) and on a pip it cannot find (an
        # environment uv made has none): nothing to act on
        quiet = [logging.getLogger(name) for name in ("mlflow.pyfunc", "mlflow.utils.environment")]
        levels = [q.level for q in quiet]
        for q in quiet:
            q.setLevel(logging.ERROR)
        try:
            with warnings.catch_warnings():  # the signature is given, and says what an input is
                warnings.filterwarnings("ignore", ".*An input example was not provided", UserWarning)
                mlflow.pyfunc.save_model(
                    str(saved),
                    python_model=TranslationModel(),
                    artifacts=artifacts,
                    signature=signature,
                    pip_requirements=[f"lightning-attn=={__version__}"],
                )
        finally:
            for q, level in zip(quiet, levels):
                q.setLevel(level)
        client.log_artifacts(run_id, str(saved), MODEL)
    return f"runs:/{run_id}/{MODEL}"


def log_trained(task: str, result: Any) -> str | None:
    """The run ``train`` just trained (its ``TrainResult``) as an MLflow model, where its task is served and it has a
    checkpoint; once, by rank 0 of a DDP job. Returns the model's URI, None where nothing was logged."""
    from lightning.pytorch.utilities import rank_zero_only

    if not (serves(task) and result.best_checkpoint and rank_zero_only.rank == 0):
        return None
    return log_model(result.run_id, tracking_uri=result.tracking_uri)


def serves(task: str) -> bool:
    """Whether runs of ``task`` can be logged as an MLflow model: those that take sentences (translation)."""
    from .predict import inputs_kind

    return inputs_kind(task) == "sentences"
