"""What a worker does next with a study: the answer :func:`.budget.next_action` and
:func:`.sequential.next_action` give, and the worker's loop acts on."""

from __future__ import annotations

from ..words import Word


class Action(Word):
    """What a worker does next with a study: ``ask`` for a trial (budget left, or a retry waiting), ``wait`` (no
    budget left, but trials still run, one of which may yet die and need a retry), or be ``done`` with it."""

    ASK = "ask"
    WAIT = "wait"
    DONE = "done"
