"""lightning-attn: hard or soft attention, for my task, at what cost? Measured with Lightning, Optuna and MLflow."""

__version__ = "0.1.0"
