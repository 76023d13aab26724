"""Tracking: MLflow runs and experiments, secrets kept out of logs."""

from .mlflow import ensure_experiment, log_params, mask_params, mask_secrets, resolve_tracking_uri

__all__ = ["ensure_experiment", "log_params", "mask_params", "mask_secrets", "resolve_tracking_uri"]
