"""Tasks: each one class that owns what the toolkit asks about it, and its LightningModule; :data:`TASKS`."""

from .base import AttentionTask, TaskConfig
from .captioning import CaptioningModule, CaptioningTaskConfig
from .registry import TASKS
from .translation import TranslationModule, TranslationTaskConfig

__all__ = [
    "TASKS",
    "AttentionTask",
    "CaptioningModule",
    "CaptioningTaskConfig",
    "TaskConfig",
    "TranslationModule",
    "TranslationTaskConfig",
]
