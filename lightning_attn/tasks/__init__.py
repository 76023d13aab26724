"""LightningModules: losses, metrics, decoding at evaluation."""

from .translation import TranslationModule

__all__ = ["TranslationModule"]
