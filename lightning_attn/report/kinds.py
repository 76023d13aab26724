"""The report's closed vocabularies: why a comparison is withheld, and what a tested pair came to. Each a
``str`` enum, so that records and JSON keep the words, and a misspelt kind fails where it is made, not inside
a finished report."""

from __future__ import annotations

from ..words import Word


class BlockerKind(Word):
    """Why a comparison is not fair (:class:`.diagnostics.Blocker`; :func:`.wording.explain` words them)."""

    NOT_CONVERGED = "not converged"
    UNRECORDED = "unrecorded"
    TOO_FEW_SEEDS = "too few seeds"
    UNEQUAL_BUDGETS = "unequal budgets"
    FLOOR = "floor"
    UNTESTABLE = "untestable"
    UNTESTED = "untested"


class PairOutcome(Word):
    """A tested pair's outcome for the family (``worse``: ``better`` seen from the other side)."""

    BETTER = "better"
    WORSE = "worse"
    EQUIVALENT = "equivalent"
    UNDECIDED = "undecided"
