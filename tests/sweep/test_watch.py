"""The launcher's watch loop: when it ends, and that a worker dying at any moment is replaced (no processes)."""

from __future__ import annotations

import io
from types import SimpleNamespace

from rich.console import Console

from lightning_attn.sweep import runner


class OneDeath:
    """A worker that dies the instant after the launcher last looked for dead workers (the moment a worker
    SIGKILLed by its trial picks, at random, under load); the one started in its place finishes the work."""

    def __init__(self):
        self.alive, self.dies, self.replaced, self.finished = True, True, 0, False

    @property
    def running(self) -> bool:
        alive = self.alive
        if alive and self.replaced:  # the replacement is seen running once, then ends with the work done
            self.alive, self.finished = False, True
        return alive

    def replace_dead(self, work_left: bool) -> list[str]:
        if not self.alive and work_left:
            self.alive, self.replaced = True, self.replaced + 1
            return ["worker 0 (cpu) exited with signal 9 (SIGKILL); started worker 1 in its place"]
        if self.alive and self.dies:
            self.alive, self.dies = False, False  # dies as the look ends
        return []


def test_a_worker_dying_between_two_looks_is_replaced_not_taken_for_done(monkeypatch):
    workers = OneDeath()
    monkeypatch.setattr(runner.time, "sleep", lambda s: None)
    monkeypatch.setattr(runner, "spent", lambda spec, studies: workers.finished)
    monkeypatch.setattr(runner, "progress_line", lambda sweep, elapsed: f"[{elapsed:.0f} s] running")
    out = io.StringIO()
    runner._watch(SimpleNamespace(spec=None, studies={}), workers, 0.0, Console(file=out, width=200))
    assert workers.replaced == 1 and workers.finished
    assert "started worker 1 in its place" in out.getvalue()


def test_the_watch_ends_when_no_worker_runs_and_none_is_replaced(monkeypatch):
    workers = OneDeath()
    workers.dies = False
    workers.alive = False  # finished cleanly before the first look
    monkeypatch.setattr(runner.time, "sleep", lambda s: None)
    monkeypatch.setattr(runner, "spent", lambda spec, studies: True)
    monkeypatch.setattr(runner, "progress_line", lambda sweep, elapsed: "[0 s] done")
    runner._watch(SimpleNamespace(spec=None, studies={}), workers, 0.0, Console(file=io.StringIO()))
    assert workers.replaced == 0
