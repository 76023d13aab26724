"""MLflow helpers: where runs go, experiments, and keeping secrets out of what is logged."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

DEFAULT_DB = "mlflow.db"
_URL_WITH_PASSWORD = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.\-]*://)(?P<user>[^:/@\s]*):(?P<password>[^@/\s]+)@")


def resolve_tracking_uri(configured: str | None = None) -> str:
    """The tracking URI a run uses: the config's, else ``$MLFLOW_TRACKING_URI``, else
    ``sqlite:///<cwd>/mlflow.db`` (absolute, so it still points here from any working directory).

    A local ``./mlruns`` folder store is never the fallback: MLflow 3.13+ refuses it.
    """
    uri = configured or os.environ.get("MLFLOW_TRACKING_URI")
    return uri or f"sqlite:///{Path.cwd() / DEFAULT_DB}"


def mask_secrets(text: str) -> str:
    """Replace the password of every ``scheme://user:password@host`` in ``text`` with ``***``."""
    return _URL_WITH_PASSWORD.sub(lambda m: f"{m['scheme']}{m['user']}:***@", text)


def mask_params(params: dict[str, Any]) -> dict[str, Any]:
    return {k: mask_secrets(v) if isinstance(v, str) else v for k, v in params.items()}


def log_params(client: Any, run_id: str, params: dict[str, Any]) -> None:
    """Log ``params`` on an existing run: passwords masked, values cut to MLflow's limit, 100 per request."""
    from mlflow.entities import Param

    items = [Param(k, mask_secrets(str(v))[:6000]) for k, v in params.items()]
    for i in range(0, len(items), 100):
        client.log_batch(run_id, params=items[i : i + 100])


def default_artifact_location(tracking_uri: str, experiment_name: str) -> str | None:
    """For a local SQLite store: ``mlartifacts/<experiment>`` next to the database file.

    Without this MLflow would put artifacts in ``./mlruns`` of whatever the working directory is.
    Other stores (servers, PostgreSQL) keep their own artifact root.
    """
    parts = urlsplit(tracking_uri)
    if parts.scheme != "sqlite" or not parts.path or parts.path in ("/", "/:memory:"):
        return None
    db = Path(parts.path[1:] if parts.path.startswith("//") else parts.path)
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "_", experiment_name).strip("_") or "experiment"
    return (db.resolve().parent / "mlartifacts" / slug).as_uri()


def ensure_experiment(tracking_uri: str, name: str) -> str:
    """Id of experiment ``name``, creating it (with a sensible artifact location) if missing."""
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    client = MlflowClient(tracking_uri)
    found = client.get_experiment_by_name(name)
    if found is not None and found.lifecycle_stage != "deleted":
        return found.experiment_id
    if found is not None:
        raise ValueError(f"MLflow experiment {name!r} is deleted; restore it or choose another logger.experiment_name")
    try:
        return client.create_experiment(name, artifact_location=default_artifact_location(tracking_uri, name))
    except MlflowException:
        # created meanwhile by another process
        found = client.get_experiment_by_name(name)
        if found is None:
            raise
        return found.experiment_id
