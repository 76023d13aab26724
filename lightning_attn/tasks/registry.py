"""The task registry: everything about a task that the rest of the toolkit needs, declared once.

Adding a task: its LightningModule (an :class:`~lightning_attn.tasks.base.AttentionTask` with a
``from_data`` constructor) and config dataclass, its DataModule, ``conf/task/<name>.yaml`` (its default
model and data), and one entry here. Config composition, ``train``, sweeps and (through the tags every
run carries) reports read it.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..data.captioning import CaptioningDataModule
from ..data.translation import TranslationDataModule
from .captioning import CaptioningModule, CaptioningTaskConfig
from .translation import TranslationModule, TranslationTaskConfig


@dataclass(frozen=True)
class TaskSpec:
    """One task.

    Attributes:
        config: the ``task`` section's schema.
        module: its LightningModule; ``module.from_data(task, model, attention, datamodule)`` builds it.
        datamodule: its LightningDataModule, built from the ``data`` section.
        models, data: the model and data kinds it can use (a config choosing another is refused).
        monitor, mode: the validation metric that early stopping, the best checkpoint and a sweep's default
            objective follow, and whether higher (``max``) or lower is better.
        headline: the test metric a report ranks runs by.
        patience: early stopping's patience unless the config sets one (``early_stopping.patience``): the
            epochs in a row without progress after which this task's validation metric has stopped climbing.
    """

    config: type
    module: type
    datamodule: type
    models: tuple[str, ...]
    data: tuple[str, ...]
    monitor: str
    mode: str
    headline: str
    patience: int


TASKS: dict[str, TaskSpec] = {
    "translation": TaskSpec(TranslationTaskConfig, TranslationModule, TranslationDataModule, models=("seq2seq",),
                            data=("synthetic", "parallel"), monitor="val/bleu", mode="max", headline="test/bleu",
                            # built-in translation climbs in steps (about 93, 96.7, 100 BLEU), each a stretch of up to
                            # 9 epochs with metric and loss flat, left suddenly: patience 6 stopped 8 of 28 runs on a
                            # step, and all 8 climbed to 100 with 12 (docs/results.md, issue 13)
                            patience=12),
    "captioning": TaskSpec(CaptioningTaskConfig, CaptioningModule, CaptioningDataModule, models=("captioner",),
                           data=("digits", "karpathy"), monitor="val/bleu4", mode="max", headline="test/bleu4",
                           patience=3),
}  # fmt: skip
