"""Closed vocabularies as enums whose members are their words (the report's kinds, a sweep's next action)."""

from __future__ import annotations

from enum import Enum


class Word(str, Enum):
    """An enum whose members are their words: ``str()`` and f-strings give the value, not ``Kind.NAME``; records
    and JSON keep the words."""

    def __str__(self) -> str:
        return str.__str__(self)

    def __format__(self, spec: str) -> str:
        return str.__format__(str.__str__(self), spec)
