"""Tracking: MLflow runs and experiments, secrets kept out of logs."""

from .mlflow import (
    TrackingUnavailable,
    check_tracking_store,
    database_url,
    ensure_experiment,
    log_params,
    mask_params,
    mask_secrets,
    resolve_tracking_uri,
)

__all__ = [
    "TrackingUnavailable",
    "check_tracking_store",
    "database_url",
    "ensure_experiment",
    "log_params",
    "mask_params",
    "mask_secrets",
    "resolve_tracking_uri",
]
