"""Signals and child processes (``lightning_attn.processes``)."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import textwrap
import threading
import time

import pytest

from lightning_attn import processes
from lightning_attn.processes import (
    STOP_SIGNALS,
    Stopped,
    StopSignal,
    check_stop,
    serve_until_stopped,
    signals_deferred,
    stop_signals,
    stops_at_safe_points,
)


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


def test_a_signal_while_stopping_is_ignored_and_one_after_a_lost_stop_is_raised():
    with stop_signals():
        try:
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(5)
        except Stopped:
            try:
                time.sleep(0.1)  # stopping: a second signal, also inside the clean-up's own exceptions, waits
                os.kill(os.getpid(), signal.SIGTERM)
                time.sleep(0.1)
                raise TimeoutError("a clean-up step that timed out")
            except TimeoutError:
                os.kill(os.getpid(), signal.SIGINT)
                time.sleep(0.1)
        # a Stopped lost (dropped by a garbage collector's callback, here by the except above): the next one stops
        with pytest.raises(Stopped) as stopped:
            os.kill(os.getpid(), signal.SIGHUP)
            time.sleep(5)
    assert stopped.value.signum == signal.SIGHUP


def test_a_stop_signal_is_raised_at_the_next_safe_point_once():
    done = []
    with stops_at_safe_points():
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(0.05)  # the handler has run: it only noted the signal
        done.append("a write to the tracking store, whole")
        with pytest.raises(StopSignal) as stopped:
            check_stop()
        check_stop()  # raised once: the stop's own clean-up has safe points too
    assert done and stopped.value.signum == signal.SIGTERM and stopped.value.exit_code == 143
    assert isinstance(stopped.value, KeyboardInterrupt)  # what stops Lightning gracefully
    check_stop()  # the block is over: nothing noted any more


def test_a_second_signal_stops_at_once():
    with pytest.raises(StopSignal) as stopped, stops_at_safe_points():
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(0.05)
        os.kill(os.getpid(), signal.SIGINT)  # Ctrl+C, twice: the user insists
        time.sleep(5)
    assert stopped.value.signum == signal.SIGINT and stopped.value.exit_code == 130


def test_a_stop_that_meets_no_safe_point_is_raised_wherever_the_program_is(monkeypatch):
    monkeypatch.setattr(processes, "FORCE_STOP_S", 0.2)
    slept = []
    with pytest.raises(StopSignal), stops_at_safe_points():
        os.kill(os.getpid(), signal.SIGHUP)
        time.sleep(60)  # stuck where there is no safe point
        slept.append("never: the stop is raised inside the sleep")
    assert not slept


def test_stops_at_safe_points_restores_the_handlers():
    before = {s: signal.getsignal(s) for s in STOP_SIGNALS}
    with stops_at_safe_points():
        assert all(signal.getsignal(s) is not before[s] for s in STOP_SIGNALS)
    assert {s: signal.getsignal(s) for s in STOP_SIGNALS} == before


def test_a_server_loop_runs_until_a_stop_signal_or_its_own_end():
    threading.Timer(0.3, os.kill, (os.getpid(), signal.SIGTERM)).start()
    assert serve_until_stopped(lambda: time.sleep(60)) == signal.SIGTERM  # the loop never sees the signal
    assert serve_until_stopped(lambda: None) is None
    with pytest.raises(OSError, match="Address already in use"):
        serve_until_stopped(lambda: (_ for _ in ()).throw(OSError(98, "Address already in use")))


WRITER = textwrap.dedent("""
    import sys
    from mlflow import MlflowClient
    from mlflow.entities import Metric
    from lightning_attn.processes import check_stop, stops_at_safe_points

    client = MlflowClient(sys.argv[1])
    run = client.create_run(client.create_experiment("x")).info.run_id
    with stops_at_safe_points():
        print("writing", flush=True)
        try:
            for step in range(10**6):
                check_stop()
                client.log_batch(run, metrics=[Metric(f"m{i}", 1.0, 0, step) for i in range(200)])
        except KeyboardInterrupt as e:
            client.set_terminated(run, "KILLED")  # the stop's own write: the database is not left locked
            print("stopped", e.exit_code, flush=True)
""")


@pytest.mark.e2e
def test_a_stop_during_mlflow_writes_to_sqlite_is_never_lost_nor_leaves_the_database_locked(tmp_path):
    # raised in the handler, a SIGTERM that lands inside a write left SQLite locked (about 3 in 10) or was
    # dropped by a garbage-collector callback (about 1 in 4): six writers, each stopped at a random moment
    writers = []
    for i in range(6):
        uri = f"sqlite:///{tmp_path / f'{i}.db'}"
        proc = subprocess.Popen(
            [sys.executable, "-c", WRITER, uri], stdout=subprocess.PIPE, text=True, stderr=subprocess.DEVNULL
        )
        writers.append((proc, uri))
    for proc, _ in writers:
        assert proc.stdout.readline().strip() == "writing"
    for proc, _ in random.sample(writers, len(writers)):
        time.sleep(random.uniform(0.1, 0.4))
        proc.send_signal(signal.SIGTERM)
    from mlflow import MlflowClient

    for proc, uri in writers:
        out, _ = proc.communicate(timeout=60)
        assert proc.returncode == 0 and out.strip() == "stopped 143"
        client = MlflowClient(uri)
        [run] = client.search_runs([client.get_experiment_by_name("x").experiment_id])
        assert run.info.status == "KILLED"
