"""Child processes that end with their parent: the sweep's workers, the UI servers.

* :func:`die_with_parent` — the kernel sends a signal to this process when its parent dies, however
  the parent dies (Linux ``PR_SET_PDEATHSIG``; elsewhere nothing happens).
* :func:`stop_signals` — SIGINT, SIGTERM and SIGHUP all become :class:`Stopped` in the main thread:
  one shutdown path whatever stops the program (Ctrl+C, ``kill``, a closed terminal, a scheduler).
* :func:`stop_group` — end a child and everything it started: SIGTERM to its process group, then SIGKILL
  after a grace period.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


class Stopped(BaseException):
    """A stop signal reached the process (Ctrl+C, ``kill``, a hang-up, a scheduler's SIGTERM)."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum

    @property
    def exit_code(self) -> int:
        return 128 + self.signum  # what a shell reports for a process ended by that signal


@contextmanager
def stop_signals() -> Iterator[None]:
    """Turn the first SIGINT/SIGTERM/SIGHUP into :class:`Stopped`; later ones while stopping are ignored
    (whoever stops escalates to SIGKILL after a grace period)."""
    raised = False

    def handler(signum, frame):
        nonlocal raised
        if not raised:
            raised = True
            raise Stopped(signum)

    previous = {s: signal.signal(s, handler) for s in STOP_SIGNALS}
    try:
        yield
    finally:
        for s, h in previous.items():
            signal.signal(s, h)


@contextmanager
def signals_deferred() -> Iterator[None]:
    """Hold SIGINT/SIGTERM/SIGHUP back until the block is done, then deliver them: for steps that must not be
    cut in half (an MLflow run created but its id not yet recorded would stay RUNNING for ever)."""
    signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)


def die_with_parent(sig: int = signal.SIGTERM) -> None:
    """Ask the kernel to send ``sig`` to this process when its parent dies (Linux; elsewhere a no-op)."""
    if not sys.platform.startswith("linux"):
        return
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(1, int(sig), 0, 0, 0)  # PR_SET_PDEATHSIG


def stop_group(proc: subprocess.Popen, grace_s: float) -> int:
    """SIGTERM to ``proc``'s process group, SIGKILL after ``grace_s``; the exit code. ``proc`` must lead
    its own group (``start_new_session=True``)."""
    for sig, wait in ((signal.SIGTERM, grace_s), (signal.SIGKILL, 10.0)):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
        try:
            return proc.wait(timeout=wait)
        except subprocess.TimeoutExpired:
            continue
    return proc.wait()
