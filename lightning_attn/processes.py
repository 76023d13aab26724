"""Child processes that end with their parent: the sweep's workers, the UI servers.

* :func:`die_with_parent` — the kernel sends a signal to this process when its parent dies, however
  the parent dies (Linux ``PR_SET_PDEATHSIG``; elsewhere nothing happens).
* :func:`stop_signals` — SIGINT, SIGTERM and SIGHUP all become :class:`Stopped` in the main thread:
  one shutdown path whatever stops the program (Ctrl+C, ``kill``, a closed terminal, a scheduler).
* :func:`stops_at_safe_points` — for programs that write to a database while they work (training, a sweep's
  workers): a stop signal is noted, not raised wherever the program happens to be, and :func:`check_stop`
  raises it at the next safe point (a batch boundary, a trial's start).
* :func:`serve_until_stopped` — a server loop of a library's, in a thread, until a stop signal or its end.
* :func:`own_group` — start a child as the leader of a process group of its own, in this session.
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
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


#: exit codes every command and worker keeps (the table in docs/training.md): a scheduler can trust them
EXIT_FAILED = 1  # a run failed, no seed or trial completed, a sweep ended with budget left, nothing to report
EXIT_BAD_INPUT = 2  # bad input, said in one ``error:`` line before anything is written
EXIT_UNREACHABLE = 3  # an MLflow store or Optuna storage that cannot be reached, one line naming it


class _Signalled:
    """An exception that stands for a stop signal: its number, its name as the message, its exit code."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum

    @property
    def exit_code(self) -> int:
        return 128 + self.signum  # what a shell reports for a process ended by that signal


class Stopped(_Signalled, BaseException):
    """A stop signal reached the process (Ctrl+C, ``kill``, a hang-up, a scheduler's SIGTERM)."""


@contextmanager
def stop_signals() -> Iterator[None]:
    """Turn SIGINT/SIGTERM/SIGHUP into :class:`Stopped`. One that comes while a :class:`Stopped` is being handled
    (the program is stopping) is ignored: whoever stops escalates to SIGKILL after a grace period. Otherwise it is
    raised, again if need be: a stop raised inside a garbage collector's callback is printed and dropped there,
    and the next signal must still stop the program."""

    def handler(signum, frame):
        if not _stopping():
            raise Stopped(signum)

    with _handled_by(handler, STOP_SIGNALS):
        yield


def _stopping() -> bool:
    """A :class:`Stopped` is being handled: the exception being handled, or one it was raised while handling."""
    seen = sys.exc_info()[1]
    while seen is not None:
        if isinstance(seen, Stopped):
            return True
        seen = seen.__context__
    return False


@contextmanager
def _handled_by(handler, signals: tuple[int, ...]) -> Iterator[None]:
    """``handler`` for ``signals`` within the block; the previous handlers after it."""
    previous = {s: signal.signal(s, handler) for s in signals}
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
    try:
        with _handled_by(lambda signum, frame: pending.append(signum), STOP_SIGNALS):
            yield
    finally:
        for signum in dict.fromkeys(pending):  # each once, in the order they came
            signal.raise_signal(signum)  # now the restored handler runs (or the default action)


class StopSignal(_Signalled, KeyboardInterrupt):
    """A stop signal, raised at a safe point (:func:`check_stop`). A ``KeyboardInterrupt``, so that whatever
    treats Ctrl+C as a stop (Lightning's graceful shutdown, a run marked KILLED) treats it the same."""


FORCE_STOP_S = 20.0  # a noted stop that meets no safe point in this long is raised wherever the program is


class _Stop:
    """The noted stop of this process (one per process: signal handlers are)."""

    signum: int | None = None
    raised = False
    timer: threading.Timer | None = None


def _note_stop(signum, frame) -> None:
    if _Stop.signum is None:
        _Stop.signum = signum
        main = threading.main_thread().ident
        _Stop.timer = threading.Timer(FORCE_STOP_S, signal.pthread_kill, (main, signum))
        _Stop.timer.daemon = True
        _Stop.timer.start()
        return
    _raise_noted()  # a second signal (or the first, repeated by the timer): stop now


@contextmanager
def stops_at_safe_points(signals: tuple[int, ...] = STOP_SIGNALS) -> Iterator[None]:
    """Within the block, a stop signal is noted and raised as :class:`StopSignal` by the next
    :func:`check_stop`; a second one, or none of those within ``FORCE_STOP_S``, raises it at once.

    Why not raise in the handler: Python runs it between any two bytecodes of the main thread — in the middle
    of an MLflow write to SQLite (the half-done transaction keeps the database locked for every process until
    this one exits: the run can no longer be marked KILLED, nor can anyone else write), or inside a garbage
    collector's callback, where the exception is printed and dropped (the stop is lost)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    try:
        with _handled_by(_note_stop, signals):
            yield
    finally:
        if _Stop.timer is not None:
            _Stop.timer.cancel()
        _Stop.signum, _Stop.raised, _Stop.timer = None, False, None


def check_stop() -> None:
    """A safe point: raise the stop signal noted since :func:`stops_at_safe_points` began, once."""
    if _Stop.signum is not None and not _Stop.raised:
        _raise_noted()


def _raise_noted() -> None:
    _Stop.raised = True
    _Stop.timer.cancel()  # set with the noted signal
    raise StopSignal(_Stop.signum)


def stop_signum(e: BaseException) -> int | None:
    """The signal that ``e`` stands for, when it is a stop: Lightning's SIGTERMException, a stop signal raised at a
    safe point, Ctrl+C — each itself, or as the SystemExit(1) Lightning's graceful shutdown turns it into. None: no
    stop."""
    from lightning.pytorch.utilities.exceptions import SIGTERMException

    if isinstance(e, SIGTERMException):
        return signal.SIGTERM
    if (signalled := next((x for x in (e, e.__context__) if isinstance(x, StopSignal)), None)) is not None:
        return signalled.signum
    if isinstance(e, KeyboardInterrupt) or isinstance(e.__context__, KeyboardInterrupt):
        return signal.SIGINT
    return None


def stop_exit_code(e: BaseException) -> int | None:
    """The exit code of a process that ``e`` stopped (128 + the signal, as a shell reports it); None: ``e`` is no
    stop. Lightning ends a fit after SIGTERM with exit code 0 and after Ctrl+C with 1, as a failure would."""
    signum = stop_signum(e)
    return None if signum is None else 128 + signum


@contextmanager
def stops_as_exit_codes() -> Iterator[None]:
    """A stop inside the block (see :func:`stop_exit_code`) leaves it as ``SystemExit`` with the stop's exit code,
    so that a scheduler reads a stopped training as stopped, not as finished or failed."""
    try:
        yield
    except BaseException as e:
        if (code := stop_exit_code(e)) is None:
            raise
        raise SystemExit(code) from None


def serve_until_stopped(serve: Callable[[], None]) -> int | None:
    """Run ``serve`` (a library's blocking server loop) in a daemon thread until a SIGINT/SIGTERM/SIGHUP comes
    (its number is returned; the thread ends with the process) or ``serve`` ends (``None``; what it raised is
    raised here). The handler only notes the signal: raised inside the library's request handling, a stop can
    be dropped by a garbage collector's callback, and the server would run on."""
    stop = threading.Event()
    got: list[int] = []
    failed: list[BaseException] = []

    def note(signum, frame):
        got.append(signum)
        stop.set()

    def run():
        try:
            serve()
        except BaseException as e:  # noqa: BLE001 - handed to the main thread, raised there
            failed.append(e)
        finally:
            stop.set()

    with _handled_by(note, STOP_SIGNALS):
        threading.Thread(target=run, name="server", daemon=True).start()
        while not stop.wait(0.5):  # a timeout, so that the main thread runs the handler promptly
            pass
    if got:
        return got[0]
    if failed:
        raise failed[0]
    return None


def die_with_parent(sig: int = signal.SIGTERM) -> None:
    """Ask the kernel to send ``sig`` to this process when its parent dies (Linux; elsewhere a no-op)."""
    if not sys.platform.startswith("linux"):
        return
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(1, int(sig), 0, 0, 0)  # PR_SET_PDEATHSIG


def own_group(then: Callable[[], None] | None = None) -> dict[str, Any]:
    """``subprocess.Popen`` keywords that start the child as the leader of a process group of its own, in this
    process's session; ``then`` runs in the child before its program starts (e.g. :func:`die_with_parent`).

    Its own group: a terminal's Ctrl+C (sent to the foreground group) reaches this program alone, which stops
    its children in order, and :func:`stop_group` reaches the child and all it starts. Not a session of its own
    (``start_new_session``): Linux's autogroup scheduler shares the CPU between sessions equally, whatever the
    nice values inside them, so a child in a session of its own competes at full weight with everything else
    on the machine, ``nice -n 19`` work included, and a torch process whose intra-op threads wait at each
    barrier for a thread that is not running slows down many times over. In this session it gets the CPU
    share its nice value says.
    """
    if then is None and sys.version_info >= (3, 11):
        return {"process_group": 0}  # setpgid in the child, no Python code run between fork and exec

    def start() -> None:
        os.setpgrp()
        if then is not None:
            then()

    return {"preexec_fn": start}


def stop_group(proc: subprocess.Popen, grace_s: float) -> int:
    """SIGTERM to ``proc``'s process group, SIGKILL after ``grace_s``; the exit code. ``proc`` must lead
    its own group (:func:`own_group`)."""
    for sig, wait in ((signal.SIGTERM, grace_s), (signal.SIGKILL, 10.0)):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
        try:
            return proc.wait(timeout=wait)
        except subprocess.TimeoutExpired:
            continue
    return proc.wait()


def run_server(command: list[str], env: dict[str, str]) -> int:
    """Run a server process (``mlflow ui``, ``mlflow server``) until it ends or a signal stops us; then stop it and
    everything it started (its process group). Its output passes through ours (where the console masks secrets).
    Returns its exit code; 0 when Ctrl+C stopped it, 128 + the signal number for another signal."""
    server = None
    with stop_signals():
        try:
            server = subprocess.Popen(
                command,
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                **own_group(then=die_with_parent),
            )
            relay = threading.Thread(target=_relay, args=(server.stdout,), daemon=True)
            relay.start()
            code = server.wait()
            relay.join(timeout=2)
            return code
        except Stopped as stop:
            if server is not None:
                stop_group(server, grace_s=10)
            return 0 if stop.signum == signal.SIGINT else stop.exit_code


def _relay(stream) -> None:
    for line in stream:
        sys.stdout.write(line)
        sys.stdout.flush()
