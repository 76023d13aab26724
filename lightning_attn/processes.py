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
import threading
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
    cut in half (an MLflow run created but its id not yet recorded would stay RUNNING for ever).

    The handlers are swapped for ones that only note the signal. Masking the signals would not do: the
    kernel hands a signal sent to the process to any thread that does not block it (torch, MLflow and
    Optuna all start threads), and Python runs the handler in the main thread whichever thread received
    it. Only the main thread runs Python handlers, so elsewhere there is nothing to hold back."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    pending: list[int] = []
    previous = {s: signal.signal(s, lambda signum, frame: pending.append(signum)) for s in STOP_SIGNALS}
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
        for signum in dict.fromkeys(pending):  # each once, in the order they came
            signal.raise_signal(signum)  # now the restored handler runs (or the default action)


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
