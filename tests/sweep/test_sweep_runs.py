"""Sweeps for real, on CPU: parallel workers, a killed worker and --resume, divergence, pruning, DDP.

Every sweep runs as the user runs it (``python -m lightning_attn sweep …`` in a subprocess, which
starts its own worker processes) and is checked through Optuna's storage and MLflow's client.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
from mlflow import MlflowClient
from optuna.trial import TrialState

from lightning_attn.resources import sweeps_dir
from lightning_attn.sweep.storage import FAILURE_REASON, STALE, HeartbeatJournalStorage

from ..helpers import TINY

pytestmark = pytest.mark.e2e  # sweeps, servers, browsers, DDP, wheels: the CI suite


RUN = [o for o in TINY if not o.startswith(("trainer.max_epochs", "trainer.enable_progress_bar"))]


def sweep_file(name: str, body: str) -> Path:
    path = Path(f"{name}.yaml")
    overrides = ", ".join(RUN)
    path.write_text(f"name: {name}\ntask: translation\noverrides: [{overrides}]\n{body}")
    return path


def sweep(*args: str, timeout: int = 300, wait: bool = True, env: dict[str, str] | None = None):
    """``lightning-attn sweep …`` in a subprocess, its MLflow store the working folder's ``mlflow.db``; ``env``:
    variables to add to its environment."""
    cmd = [sys.executable, "-m", "lightning_attn", "sweep", *args]
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"} | (env or {})
    if not wait:
        return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)


def studies(name: str, root: Path = Path()) -> dict[str, optuna.Study]:
    storage = HeartbeatJournalStorage(root / f"outputs/sweeps/{name}/optuna.journal", 10, 60)
    return {
        s.study_name: optuna.load_study(study_name=s.study_name, storage=storage)
        for s in optuna.get_all_study_summaries(storage)
    }


def mlflow_runs(experiment: str):
    client = MlflowClient(f"sqlite:///{Path.cwd() / 'mlflow.db'}")
    exp = client.get_experiment_by_name(experiment)
    runs = client.search_runs([exp.experiment_id], max_results=1000)
    roles = ("study", "seeds")
    parents = {r.data.tags["optuna.study"]: r for r in runs if r.data.tags.get("lightning_attn.role") in roles}
    children = [r for r in runs if "optuna.trial" in r.data.tags]
    return client, parents, children


def child_of(children, study: str, number: int):
    found = [r for r in children if r.data.tags["optuna.study"] == study and r.data.tags["optuna.trial"] == str(number)]
    assert len(found) == 1, f"{study} #{number}: {len(found)} MLflow runs"
    return found[0]


def test_smoke_sweep_on_two_cpu_workers():
    smoke = [str(sweeps_dir() / "smoke.yaml"), "--devices", "cpu:2", "n_trials=2", "seeds=[]"]  # seeds: own test
    proc = sweep(*smoke, "trainer.max_epochs=1")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "smoke-soft" not in proc.stderr and "soft 2/2" in proc.stdout  # the sweep-level progress line
    found = studies("smoke")
    assert set(found) == {"smoke-soft", "smoke-hard", "smoke-uniform"}  # the control is compared too
    for study in found.values():
        trials = study.get_trials()
        assert [t.number for t in trials] == [0, 1]  # no duplicates, nothing beyond the budget
        assert all(t.state == TrialState.COMPLETE for t in trials)
        assert {t.user_attrs["worker"] for t in trials} <= {0, 1}
    # two worker processes took trials from the shared studies; which of them took which trial is the scheduler's
    # choice (on a loaded machine one may start late and take none), so it is not asserted
    assert "2 worker(s) on cpu:2" in proc.stdout
    assert all(Path(f"outputs/sweeps/smoke/logs/worker-{i}.log").is_file() for i in (0, 1))
    client, parents, children = mlflow_runs("smoke")
    assert set(parents) == set(found) and len(children) == 6
    for name, study in found.items():
        parent = parents[name]
        assert parent.info.status == "FINISHED" and "best/val/bleu" in parent.data.metrics
        assert parent.data.params["n_trials"] == "2" and parent.data.params["space.task.lr"].startswith("float[")
        for trial in study.get_trials():
            run = child_of(children, name, trial.number)
            assert run.data.tags["mlflow.parentRunId"] == parent.info.run_id
            assert run.info.run_id == trial.user_attrs["mlflow_run_id"]
            assert run.data.tags["device"] == "cpu" and run.data.tags["seed"] == "0"
            assert run.data.params["task.lr"] == str(trial.params["task.lr"])
            assert run.data.metrics["val/bleu"] == trial.value
            assert run.data.metrics["run/epochs"] == 1 and run.data.metrics["run/converged"] == 0  # the cap of 1
            # every trial carries the stability and speed families, like every train run
            for metric in (
                "stability/grad_norm_mean",
                "stability/attention_entropy",
                "speed/train_samples_per_s",
                "speed/step_time_ms_p95",
                "speed/infer_latency_ms_p50_b1",
                "speed/peak_rss_mb",
            ):
                assert metric in run.data.metrics, metric
            if name.endswith("hard"):
                assert "stability/reinforce_advantage_var" in run.data.metrics
    assert not [r for r in children + list(parents.values()) if r.info.status == "RUNNING"]
    # running it again without --resume would mix two sweeps: refused
    again = sweep(*smoke)
    assert again.returncode == 2 and "already exists" in again.stderr and "--resume" in again.stderr


def checkpointed_epochs(trial: int) -> int:
    """The epochs a trial of the "kill" sweep has in its ``last.ckpt`` (0 while none is whole)."""
    import torch

    for saved in Path(f"outputs/sweeps/kill/trials/kill-soft/{trial}").rglob("last.ckpt"):
        try:
            return torch.load(saved, weights_only=True)["epoch"] + 1
        except (OSError, RuntimeError, EOFError, KeyError):  # being written
            return 0
    return 0


def kill_at_a_checkpoint(pid: int, trial: int, at_least: int) -> int | None:
    """SIGKILL the worker ``pid`` once trial ``trial`` has ``at_least`` epochs checkpointed, and return how many it
    had; None (the worker continued) while it has fewer. The worker is frozen (SIGSTOP) while its checkpoint is
    read, so what is read is what it dies with, however fast or slowly it trains."""
    os.kill(pid, signal.SIGSTOP)
    done = checkpointed_epochs(trial)
    os.kill(pid, signal.SIGKILL if done >= at_least else signal.SIGCONT)
    return done if done >= at_least else None


EPOCHS, BATCHES, BATCH_SIZE = 12, 3, 16  # the kill sweep's trials: epochs, training batches per epoch, batch size


def test_killed_worker_trial_continues_from_its_checkpoint_and_resume_completes_the_budget():
    # no replacement worker (worker_restarts: 0): the launch ends unfinished, and --resume completes it;
    # no pruning: long trials under the median pruner may be pruned, and then fewer than 2 complete
    import torch

    path = sweep_file(
        "kill",
        "mechanisms: {soft: {}}\nspace: {task.lr: {type: float, low: 1.0e-3, high: 1.0e-2}}\n"
        "n_trials: 2\nheartbeat_interval: 1\ngrace_period: 3\nworker_restarts: 0\n"
        "pruner: {kind: none}\n",
    )
    assert f"trainer.limit_train_batches={BATCHES}" in RUN and f"data.batch_size={BATCH_SIZE}" in RUN
    args = [str(path), "--devices", "cpu:1", f"trainer.max_epochs={EPOCHS}", "early_stopping.enabled=false"]
    launcher = sweep(*args, wait=False)
    victim = done = None
    deadline = time.monotonic() + 180
    while done is None and time.monotonic() < deadline:
        time.sleep(0.3)
        if not Path("outputs/sweeps/kill/optuna.journal").exists():
            continue
        trials = studies("kill").get("kill-soft")
        trials = trials.get_trials() if trials else []
        if len(trials) == 2 and trials[0].state == TrialState.COMPLETE and "pid" in trials[1].user_attrs:
            # its checkpoint, not its metrics: epoch 3's validation is logged a moment before its last.ckpt is written
            victim = trials[1]
            done = kill_at_a_checkpoint(victim.user_attrs["pid"], victim.number, at_least=3)
    assert done is not None, "the second trial did not reach its third epoch"
    out, _ = launcher.communicate(timeout=60)
    assert launcher.returncode == 1 and "signal 9" in out and "--resume" in out
    first = studies("kill")["kill-soft"].get_trials()[0]
    (saved,) = Path(f"outputs/sweeps/kill/trials/kill-soft/{victim.number}").rglob("last.ckpt")
    assert torch.load(saved, weights_only=True)["epoch"] + 1 == done  # what the dead attempt left
    assert 3 <= done < EPOCHS

    proc = sweep(*args, "--resume")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    trials = studies("kill")["kill-soft"].get_trials()
    killed = trials[1]
    assert killed.state == TrialState.FAIL and killed.user_attrs[STALE]
    assert "heartbeats" in killed.user_attrs[FAILURE_REASON]
    assert trials[0].state == TrialState.COMPLETE and trials[0].value == first.value  # kept, not re-run
    assert [t.state for t in trials].count(TrialState.COMPLETE) == 2  # the budget completes
    retry = [t for t in trials if t.user_attrs.get("retry_of") == killed.number]
    assert (
        len(retry) == 1
        and retry[0].params == killed.params
        and retry[0].user_attrs["seed"] == victim.user_attrs["seed"]
    )
    client, parents, children = mlflow_runs("kill")
    run = child_of(children, "kill-soft", killed.number)
    assert run.info.status == "FAILED" and "heartbeats" in run.data.tags[FAILURE_REASON]
    # the retry continued the dead attempt: it trained only the epochs after its checkpoint — their optimiser
    # steps and samples, no more — its curves going on at the step where the other stopped and ending where a
    # whole trial's end
    again = child_of(children, "kill-soft", retry[0].number)
    fresh = child_of(children, "kill-soft", 0)
    assert again.info.status == "FINISHED" and f"continues trial #{killed.number}" in again.data.tags["resumed"]

    def history(run, key: str) -> list[tuple[int, float]]:
        return sorted((m.step, m.value) for m in client.get_metric_history(run.info.run_id, key))

    trained = {r.info.run_id: [e for _, e in history(r, "speed/train_samples")] for r in (again, fresh)}
    assert trained[fresh.info.run_id] == [BATCHES * BATCH_SIZE] * EPOCHS
    assert trained[again.info.run_id] == [BATCHES * BATCH_SIZE] * (EPOCHS - done)
    # an epoch's metrics are logged at its last optimiser step (Lightning's global step, restored from the checkpoint)
    ends = [BATCHES * (epoch + 1) - 1 for epoch in range(EPOCHS)]
    assert [s for s, _ in history(fresh, "train/loss_epoch")] == ends
    assert [s for s, _ in history(again, "train/loss_epoch")] == ends[done:]
    assert [s for s, _ in history(again, "val/bleu")] == ends[done:]
    epochs = history(again, "epoch")
    assert min(e for _, e in epochs) == done and epochs[-1] == history(fresh, "epoch")[-1] == (BATCHES * EPOCHS, EPOCHS)
    assert fresh.info.status == "FINISHED"
    assert parents["kill-soft"].info.status == "FINISHED"
    assert not [r for r in children if r.info.status == "RUNNING"]


def test_diverging_trials_fail_with_their_reason_and_the_sweep_goes_on():
    path = sweep_file(
        "diverge",
        "mechanisms: {soft: {}}\nspace: {task.lr: {type: categorical, choices: [0.003, 1.0e+30]}}\n"
        "sampler: {kind: grid}\nn_trials: 2\n",
    )
    proc = sweep(str(path), "--devices", "cpu:1", "trainer.max_epochs=1")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    trials = {t.params["task.lr"]: t for t in studies("diverge")["diverge-soft"].get_trials()}
    assert trials[0.003].state == TrialState.COMPLETE
    bad = trials[1e30]
    assert bad.state == TrialState.FAIL and "diverged" in bad.user_attrs[FAILURE_REASON]
    _, parents, children = mlflow_runs("diverge")
    run = child_of(children, "diverge-soft", bad.number)
    assert run.info.status == "FAILED" and "diverged" in run.data.tags[FAILURE_REASON]
    assert parents["diverge-soft"].data.metrics["trials_failed"] == 1
    # some trials failed, some completed: exit 0, and one line says how many failed and why the first did
    said = [line for line in proc.stdout.splitlines() if "1 of 2 trial(s) failed" in line]
    assert len(said) == 1 and f"diverge-soft #{bad.number}:" in said[0] and "diverged" in said[0], proc.stdout[-2000:]


def test_a_sweep_whose_every_trial_failed_exits_1_with_the_first_reason():
    path = sweep_file(
        "doomed", "mechanisms: {soft: {}}\nspace: {task.lr: {type: categorical, choices: [1.0e+30]}}\nn_trials: 2\n"
    )
    proc = sweep(str(path), "--devices", "cpu:1", "trainer.max_epochs=1")
    assert proc.returncode == 1, proc.stdout[-3000:] + proc.stderr[-3000:]
    last = proc.stdout.strip().splitlines()[-1]
    assert last.startswith("sweep failed: no trial completed (2 failed); the first, doomed-soft #0: ") and (
        "diverged" in last
    ), last
    _, parents, _ = mlflow_runs("doomed")
    assert parents["doomed-soft"].info.status == "FAILED"


def test_pruning_prunes_a_hopeless_trial():
    # minimise the validation loss; after one finished trial, a trial worse than the median at an epoch stops
    path = sweep_file(
        "prune",
        "mechanisms: {soft: {}}\nspace: {task.lr: {type: float, low: 1.0e-7, high: 1.0e-1, log: true}}\n"
        "objectives: [{metric: val/loss, direction: minimize}]\nsampler: {kind: random}\n"
        "pruner: {kind: median, n_startup_trials: 1}\nn_trials: 5\n",
    )
    proc = sweep(str(path), "--devices", "cpu:1", "trainer.max_epochs=3")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    trials = studies("prune")["prune-soft"].get_trials()
    pruned = [t for t in trials if t.state == TrialState.PRUNED]
    assert pruned, [(t.params, t.state, t.intermediate_values) for t in trials]
    _, parents, children = mlflow_runs("prune")
    run = child_of(children, "prune-soft", pruned[0].number)
    assert run.info.status == "KILLED" and run.data.tags["optuna.state"] == "PRUNED"
    assert parents["prune-soft"].data.metrics["trials_pruned"] == len(pruned)


# what `sbatch --ntasks-per-node=1` sets in the one task that runs the sweep: Lightning must not take these
# for the ranks the sweep starts itself
SLURM_JOB = {
    "SLURM_JOB_ID": "4242",
    "SLURM_JOB_NAME": "sweep",
    "SLURM_NTASKS": "1",
    "SLURM_NTASKS_PER_NODE": "1",
    "SLURM_NNODES": "1",
    "SLURM_NODELIST": "node1",
    "SLURM_PROCID": "0",
    "SLURM_LOCALID": "0",
    "SLURM_NODEID": "0",
    "SLURM_CPUS_PER_TASK": "2",
}


def test_ddp_trial_is_one_optuna_trial_with_the_same_config_on_both_ranks():
    path = sweep_file(
        "ddp", "mechanisms: {soft: {}}\nspace: {task.lr: {type: float, low: 1.0e-3, high: 1.0e-2}}\nn_trials: 1\n"
    )
    proc = sweep(str(path), "--ddp", "--devices", "cpu:2", "trainer.max_epochs=1", env=SLURM_JOB)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    trials = studies("ddp")["ddp-soft"].get_trials()
    assert len(trials) == 1 and trials[0].state == TrialState.COMPLETE  # one trial, not one per rank
    logs = Path("outputs/sweeps/ddp/logs")
    rank0, rank1 = ((logs / f"worker-0-rank{r}.log").read_text() for r in (0, 1))
    lr = f"task.lr={trials[0].params['task.lr']!r}"
    assert lr in rank0 and lr in rank1
    agreed = [line for line in rank0.splitlines() if line.startswith("all 2 ranks train config")]
    assert agreed and agreed[0] in rank1  # both ranks hashed the same composed config
    _, _, children = mlflow_runs("ddp")
    assert len(children) == 1 and children[0].data.params["trainer.strategy"] == "ddp"
    assert children[0].data.tags["ddp.backend"] == "gloo"  # on GPUs: cpu:gloo,cuda:nccl
    assert children[0].info.status == "FINISHED"


def test_seeds_retrain_the_best_parameters_once_per_seed_across_workers():
    path = sweep_file(
        "seeds",
        "mechanisms: {soft: {}}\nspace: {task.lr: {type: float, low: 1.0e-3, high: 1.0e-2}}\n"
        "n_trials: 2\nseeds: [0, 1]\n",
    )
    proc = sweep(str(path), "--devices", "cpu:2", "trainer.max_epochs=4")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    found = studies("seeds")
    search, seeds = found["seeds-soft"], found["seeds-soft-seeds"]
    best = search.best_trial
    retrained = seeds.get_trials()
    assert sorted(t.user_attrs["seed"] for t in retrained) == [0, 1]
    assert all(t.state == TrialState.COMPLETE and t.params == best.params for t in retrained)
    assert {t.user_attrs["worker"] for t in retrained} <= {0, 1}  # whichever worker is free takes the next seed
    client, parents, children = mlflow_runs("seeds")
    parent = parents["seeds-soft-seeds"]
    assert parent.data.tags["lightning_attn.role"] == "seeds" and parent.info.status == "FINISHED"
    runs = [child_of(children, "seeds-soft-seeds", t.number) for t in retrained]
    assert sorted(r.data.tags["seed"] for r in runs) == ["0", "1"]
    values = [r.data.metrics["test/loss"] for r in runs]
    assert parent.data.metrics["test/loss_mean"] == pytest.approx(sum(values) / 2)
    assert "val/bleu_std" in parent.data.metrics and "val/bleu_ci95" not in parent.data.metrics  # 2 seeds: no CI
    assert "(n = 2: no CI)" in proc.stdout and "± " not in proc.stdout


def test_memory_figures_of_a_trial_are_its_own_in_a_shared_worker():
    """One worker trains a large model, then a small one: the small trial must not report the large one's peak."""
    big = "[model.decoder_hidden=1024, model.embed_dim=256, data.batch_size=4]"
    path = sweep_file(
        "mem",
        f"mechanisms: {{big: {{attention: soft, overrides: {big}}}, small: {{attention: soft}}}}\n"
        "n_trials: 1\npruner: {kind: none}\nspeed_pass: false\n",  # the trials' own figures: no pass after them
    )
    proc = sweep(str(path), "--devices", "cpu:1", "trainer.max_epochs=1")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    found = studies("mem")  # no search space: a comparison, one run of each mechanism
    first, second = found["mem-big-seeds"].get_trials()[0], found["mem-small-seeds"].get_trials()[0]
    assert first.user_attrs["pid"] == second.user_attrs["pid"]  # the same worker process
    assert first.datetime_complete <= second.datetime_start  # the large model first
    _, _, children = mlflow_runs("mem")
    big_run, small_run = (child_of(children, f"mem-{m}-seeds", 0).data.metrics for m in ("big", "small"))
    assert big_run["speed/rss_growth_mb"] > 100  # the large model's optimiser state and activations (~145 MB)
    assert small_run["speed/rss_growth_mb"] < 0.25 * big_run["speed/rss_growth_mb"]
    # the absolute peak is the small run's own: never above the large run's (a lifetime peak would equal it)
    assert small_run["speed/peak_rss_mb"] < big_run["speed/peak_rss_mb"]


def test_compare_stopped_and_resumed_never_trains_a_finished_run_again():
    shared = [o for o in RUN if not o.startswith("attention.")]  # the uniform control has no attention settings
    cmd = [
        sys.executable,
        "-m",
        "lightning_attn",
        "compare",
        "attention=soft,uniform",
        "seeds=0-1",
        "--devices",
        "cpu:2",
        *shared,
        "trainer.max_epochs=8",
        "early_stopping.enabled=false",
    ]
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    launcher = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    journal = Path("outputs/sweeps/compare-translation/optuna.journal")
    deadline, before = time.monotonic() + 240, {}
    while time.monotonic() < deadline and launcher.poll() is None:
        time.sleep(0.5)
        if not journal.exists():
            continue
        trials = [t for s in studies("compare-translation").values() for t in s.get_trials()]
        done = [t for t in trials if t.state == TrialState.COMPLETE]
        if done and any(t.state == TrialState.RUNNING for t in trials):
            before = {(t.user_attrs["mlflow_run_id"], t.datetime_complete) for t in done}
            break
    assert before, "no run finished while another ran"
    launcher.send_signal(signal.SIGTERM)
    out, _ = launcher.communicate(timeout=120)
    assert launcher.returncode == 128 + signal.SIGTERM, out[-3000:]

    resumed = subprocess.run([*cmd, "--resume"], capture_output=True, text=True, timeout=300, env=env)
    assert resumed.returncode == 0, resumed.stdout[-3000:] + resumed.stderr[-3000:]
    found = studies("compare-translation")
    assert set(found) == {"compare-translation-soft-seeds", "compare-translation-uniform-seeds"}  # no search
    complete = [t for s in found.values() for t in s.get_trials() if t.state == TrialState.COMPLETE]
    # every finished run of the first launch is still the one run of its seed: none was trained again
    assert before <= {(t.user_attrs["mlflow_run_id"], t.datetime_complete) for t in complete}
    for study in found.values():
        seeds = [t.user_attrs["seed"] for t in study.get_trials() if t.state == TrialState.COMPLETE]
        assert sorted(seeds) == [0, 1], (study.study_name, seeds)
    _, parents, children = mlflow_runs("compare-translation")
    finished = [(r.data.tags["attention"], r.data.tags["seed"]) for r in children if r.info.status == "FINISHED"]
    assert sorted(finished) == [("soft", "0"), ("soft", "1"), ("uniform", "0"), ("uniform", "1")]
    assert all(p.info.status == "FINISHED" and p.data.tags["lightning_attn.role"] == "seeds" for p in parents.values())
    # then, by default, one checkpoint per mechanism timed side by side, logged for the report
    client = MlflowClient(f"sqlite:///{Path.cwd() / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("compare-translation").experiment_id
    (timed,) = client.search_runs([experiment], "tags.`lightning_attn.role` = 'speed_pass'")
    assert timed.info.status == "FINISHED" and "speed_pass/uniform/train_ms" in timed.data.metrics
    said = [line for line in resumed.stdout.splitlines() if line.startswith("speed pass: uniform")]
    assert len(said) == 3 and all("soft" in line for line in said), resumed.stdout[-3000:]  # greedy, beam, train
    # and each mechanism's best seed run an MLflow model
    models = re.findall(r"MLflow model of (\w+) \(its best seed run\): runs:/(\w+)/model", resumed.stdout)
    assert sorted(m for m, _ in models) == ["soft", "uniform"], resumed.stdout[-3000:]
    assert all(client.list_artifacts(run_id, "model") for _, run_id in models)
