"""Tracking: MLflow runs and experiments, secrets kept out of logs."""

from .mlflow import ensure_experiment, mask_params, mask_secrets, resolve_tracking_uri

__all__ = ["ensure_experiment", "mask_params", "mask_secrets", "resolve_tracking_uri"]
