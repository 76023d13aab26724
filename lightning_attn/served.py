"""A trained run as an MLflow model: ``lightning-attn log-model RUN_ID`` (and, by default, after every
``lightning-attn train`` and for the best run of each mechanism a comparison trained).

The model is a ``pyfunc`` that carries the run's best checkpoint, vocabularies and config, with a signature and
``beam`` as a parameter: a translation run's (:class:`TranslationModel`) takes a ``source`` column of sentences,
a captioning run's (:class:`CaptionModel`, one trained on image files) an ``image`` column of images — base64-encoded
bytes, or paths where the model runs. So
``mlflow.pyfunc.load_model("runs:/RUN_ID/model").predict(pd.DataFrame({"source": ["ein hund läuft"]}))``
translates, and ``mlflow models serve -m runs:/RUN_ID/model --env-manager local`` answers HTTP requests, in an
environment where lightning-attn is installed. It answers exactly as ``lightning-attn predict RUN_ID`` does.
"""

from __future__ import annotations

import base64
import binascii
import logging
import tempfile
import warnings
from pathlib import Path
from typing import Any

import mlflow.pyfunc
import pandas as pd

from . import __version__

MODEL = "model"  # the model's artifact path in its run: runs:/RUN_ID/model


class RunModel(mlflow.pyfunc.PythonModel):
    """The pyfunc: the run's model rebuilt from its artifacts once, then inputs (column :attr:`column`) in,
    outputs out."""

    column = ""

    def load_context(self, context: Any) -> None:
        from omegaconf import OmegaConf

        from .saved_runs import rebuild

        cfg = OmegaConf.load(context.artifacts["config"])
        self.data, self.module, _ = rebuild(
            cfg, Path(context.artifacts["vocabularies"]), Path(context.artifacts["checkpoint"]), scored=False
        )
        self.beam = int(cfg.task.beam_size)

    def predict(self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None) -> list[str]:
        """``model_input``: a DataFrame with the model's column, a list of inputs, or one input; ``params``:
        ``{"beam": N}`` (1: greedy; default: as the run was tested)."""
        if hasattr(model_input, "columns"):
            given = list(model_input[self.column])
        else:
            given = [model_input] if isinstance(model_input, str | bytes) else list(model_input)
        beam = int((params or {}).get("beam") or self.beam)
        return self.answer(given, beam)

    def answer(self, given: list[Any], beam: int) -> list[str]:
        from .predict import decode_all

        return decode_all(self.data, self.module, [str(g) for g in given], beam=beam)


class TranslationModel(RunModel):
    """A translation run: sentences (column ``source``) in, translations out."""

    column = "source"


class CaptionModel(RunModel):
    """A captioning run trained on image files: images (column ``image``: base64-encoded bytes of an image file, or
    a path where the model runs) in, captions out."""

    column = "image"

    def answer(self, given: list[Any], beam: int) -> list[str]:
        with tempfile.TemporaryDirectory() as tmp:
            paths = [_image_file(g, Path(tmp) / f"{i}.img") for i, g in enumerate(given)]
            return super().answer(paths, beam)


def _image_file(given: Any, where: Path) -> str:
    """A path to the image ``given`` is: bytes or base64 text written to ``where``, else the path it names."""
    if isinstance(given, bytes):
        where.write_bytes(given)
        return str(where)
    text = str(given)
    if Path(text).expanduser().is_file():
        return text
    try:
        where.write_bytes(base64.b64decode(text, validate=True))
    except (binascii.Error, ValueError):
        return text  # neither: predict names it as an image it cannot read
    return str(where)


#: a run's model class, by what its task predicts from (:func:`lightning_attn.predict.inputs_kind`)
KINDS = {"sentences": TranslationModel, "image files": CaptionModel}


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
    from .predict import inputs_kind
    from .saved_runs import best_checkpoint, open_run, run_config, run_vocabularies
    from .tracking import tags as T

    client, run, _ = open_run(run_id, tracking_uri)
    task, data = run.data.tags.get(T.TASK, ""), run.data.params.get("data.kind")
    if not serves(task, data):
        raise ConfigError(
            f"run {run_id} ({task or 'lightning-attn'}, data={data}) is not served as an MLflow model: translation "
            "runs are, and captioning runs trained on image files"
        )
    model = KINDS[inputs_kind(task)]
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
            inputs=Schema([ColSpec("string", model.column)]),
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
                    python_model=model(),
                    artifacts=artifacts,
                    signature=signature,
                    pip_requirements=[f"lightning-attn=={__version__}"],
                )
        finally:
            for q, level in zip(quiet, levels):
                q.setLevel(level)
        client.log_artifacts(run_id, str(saved), MODEL)
    return f"runs:/{run_id}/{MODEL}"


def log_trained(task: str, result: Any, data: str | None = None) -> str | None:
    """The run ``train`` just trained (its ``TrainResult``; ``data``: its data kind) as an MLflow model, where such a
    run is served and it has a checkpoint; once, by rank 0 of a DDP job. Returns the model's URI, None where
    nothing was logged."""
    from lightning.pytorch.utilities import rank_zero_only

    if not (serves(task, data) and result.best_checkpoint and rank_zero_only.rank == 0):
        return None
    return log_model(result.run_id, tracking_uri=result.tracking_uri)


def serves(task: str, data: str | None = None) -> bool:
    """Whether runs of ``task`` (trained on ``data``, a data kind; None: any) can be logged as an MLflow model:
    those that take sentences (translation), and those that caption image files (not the built-in scenes)."""
    from .data import DATA
    from .predict import inputs_kind

    kind = inputs_kind(task)
    return kind == "sentences" or (kind == "image files" and not (data in DATA and DATA[data].builtin))
