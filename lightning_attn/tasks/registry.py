"""The task registry: name (what ``task=`` picks) -> the task's class.

A task is one class (:class:`~lightning_attn.tasks.base.AttentionTask`): its config schema, data sources,
model, metrics, pictures and LightningModule. Adding one is its module and one line here — or, from
outside the package, a plugin that calls ``TASKS.register(name, cls)`` (:mod:`lightning_attn.plugins`). A task with
no ``conf/task/<name>.yaml`` composes from its schema's defaults.
"""

from __future__ import annotations

from ..registry import Registry
from .base import AttentionTask
from .captioning import CaptioningModule
from .translation import TranslationModule

TASKS: Registry[type[AttentionTask]] = Registry(
    "task",
    {
        "translation": TranslationModule,
        "captioning": CaptioningModule,
    },
)
