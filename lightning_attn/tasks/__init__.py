"""LightningModules (losses, metrics, decoding at evaluation) and the task registry :data:`TASKS`."""

from .captioning import CaptioningModule, CaptioningTaskConfig
from .registry import TASKS, TaskSpec
from .translation import TranslationModule, TranslationTaskConfig

__all__ = [
    "TASKS",
    "CaptioningModule",
    "CaptioningTaskConfig",
    "TaskSpec",
    "TranslationModule",
    "TranslationTaskConfig",
]
