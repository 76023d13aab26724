"""The progress bar: Lightning's Rich bar without the logger's version tag."""

from __future__ import annotations

from lightning.pytorch.callbacks import RichProgressBar


class ProgressBar(RichProgressBar):
    """Shows the step loss during training and the validation BLEU, not ``v_num`` (an MLflow run id tail)."""

    def get_metrics(self, trainer, pl_module):
        items = super().get_metrics(trainer, pl_module)
        items.pop("v_num", None)
        return items
