"""Signals and child processes (``lightning_attn.processes``)."""

from __future__ import annotations

import os
import signal
import threading
import time

import pytest

from lightning_attn.processes import STOP_SIGNALS, Stopped, signals_deferred, stop_signals


def test_a_signal_inside_signals_deferred_arrives_after_the_block_is_done():
    done = []
    with pytest.raises(Stopped) as stopped, stop_signals():
        with signals_deferred():
            os.kill(os.getpid(), signal.SIGTERM)
            done.append("run created")  # the step the signal must not cut in half
            done.append("its id recorded")
        done.append("never: the signal arrives first")
    assert done == ["run created", "its id recorded"] and stopped.value.signum == signal.SIGTERM


def test_signals_deferred_holds_a_signal_that_another_thread_receives():
    # the main thread's block must not be cut even when the kernel hands the signal to another thread
    # (one that does not block it, as torch's and MLflow's threads do not)
    release = threading.Event()
    other = threading.Thread(target=release.wait)
    other.start()
    done = []
    try:
        with pytest.raises(Stopped) as stopped, stop_signals():
            with signals_deferred():
                signal.pthread_kill(other.ident, signal.SIGTERM)
                time.sleep(0.2)  # the other thread has run the C handler; the main thread checks signals
                done.append("run created")
                done.append("its id recorded")
            done.append("never: the signal arrives first")
    finally:
        release.set()
        other.join()
    assert done == ["run created", "its id recorded"] and stopped.value.signum == signal.SIGTERM


def test_signals_deferred_restores_the_handlers_and_delivers_nothing_without_a_signal():
    before = {s: signal.getsignal(s) for s in STOP_SIGNALS}
    with signals_deferred():
        assert all(signal.getsignal(s) is not before[s] for s in STOP_SIGNALS)
    assert {s: signal.getsignal(s) for s in STOP_SIGNALS} == before
