"""Signals and child processes (``lightning_attn.processes``)."""

from __future__ import annotations

import os
import signal

import pytest

from lightning_attn.processes import Stopped, signals_deferred, stop_signals


def test_a_signal_inside_signals_deferred_arrives_after_the_block_is_done():
    done = []
    with pytest.raises(Stopped) as stopped, stop_signals():
        with signals_deferred():
            os.kill(os.getpid(), signal.SIGTERM)
            done.append("run created")  # the step the signal must not cut in half
            done.append("its id recorded")
        done.append("never: the signal arrives first")
    assert done == ["run created", "its id recorded"] and stopped.value.signum == signal.SIGTERM
