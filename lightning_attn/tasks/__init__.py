"""LightningModules: losses, metrics, decoding at evaluation."""

from .captioning import CaptioningModule
from .translation import TranslationModule

__all__ = ["CaptioningModule", "TranslationModule"]
