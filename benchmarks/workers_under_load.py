"""A sweep worker's epochs beside low-priority work: alone, and with ``nice -n 19`` busy loops running.

One tiny sweep (one soft trial, ``--devices cpu:1``: one worker, every core as torch threads) is stopped
(SIGTERM to the launcher) once its trial has checkpointed 3 epochs, and resumed: the retry continues from that
checkpoint. Its epochs (``speed/epoch_time_s``) are read from MLflow — the fresh attempt's and the continued
one's. The sweep runs alone and beside ``--loops-per-core`` busy loops at nice 19 per core, started in this
session as a user's ``nice -n 19 …`` would be, in alternation (alone, loaded, alone, loaded, …).

Ratio lines: loaded / alone, and continued / fresh under load, mean epoch time (target <= 1.5x each).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SWEEP = """name: load
task: translation
mechanisms: {soft: {}}
n_trials: 1
pruner: {kind: none}
overrides: [data.n_train=96, data.n_val=16, data.n_test=16, data.batch_size=16, model.embed_dim=16,
  model.encoder_hidden=16, model.decoder_hidden=32, attention.hidden_dim=16, trainer.limit_train_batches=3,
  task.beam_size=2, task.attention_pictures_every=0, trainer.max_epochs=12, early_stopping.enabled=false]
"""


def checkpointed(folder: Path) -> int:
    import torch

    for saved in folder.rglob("last.ckpt"):
        try:
            return torch.load(saved, weights_only=True)["epoch"] + 1
        except (OSError, RuntimeError, EOFError, KeyError):  # being written
            return 0
    return 0


def one_sweep(tmp: Path) -> dict[str, list[float]]:
    """Stop the sweep at its trial's third checkpoint, resume it; each attempt's epoch times."""
    from mlflow import MlflowClient

    (tmp / "load.yaml").write_text(SWEEP)
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    cmd = [sys.executable, "-m", "lightning_attn", "sweep", "load.yaml", "--devices", "cpu:1"]
    launcher = subprocess.Popen(cmd, cwd=tmp, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    trial = tmp / "outputs/sweeps/load/trials/load-soft-seeds/0"
    while checkpointed(trial) < 3:
        if launcher.poll() is not None:
            sys.exit("the sweep ended before its trial's third epoch")
        time.sleep(0.1)
    launcher.terminate()
    launcher.wait()
    resumed = subprocess.run([*cmd, "--resume"], cwd=tmp, env=env, capture_output=True, text=True)
    if resumed.returncode != 0:
        sys.exit(f"--resume failed:\n{resumed.stdout[-2000:]}\n{resumed.stderr[-2000:]}")
    client = MlflowClient(f"sqlite:///{tmp / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("load")
    times = {}
    for run in client.search_runs([experiment.experiment_id]):
        if "optuna.trial" in run.data.tags:
            kind = "continued" if "resumed" in run.data.tags else "fresh"
            times[kind] = [m.value for m in client.get_metric_history(run.info.run_id, "speed/epoch_time_s")]
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--loops-per-core", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=2, help="alone/loaded pairs")
    args = parser.parse_args()
    cores = len(os.sched_getaffinity(0))
    found: dict[str, dict[str, list[float]]] = {"alone": {}, "loaded": {}}
    for _ in range(args.rounds):
        for setting in ("alone", "loaded"):
            loops = []
            if setting == "loaded":
                busy = [sys.executable, "-c", "while True: pass"]
                loops = [subprocess.Popen(["nice", "-n", "19", *busy]) for _ in range(cores * args.loops_per_core)]
            try:
                with tempfile.TemporaryDirectory() as tmp:
                    for kind, times in one_sweep(Path(tmp)).items():
                        found[setting].setdefault(kind, []).extend(times)
            finally:
                for loop in loops:
                    loop.kill()
                    loop.wait()
    print(
        f"workers under load: {cores} cores, {args.loops_per_core} nice-19 busy loop(s) per core, "
        f"{args.rounds} round(s); mean epoch time (s), epochs"
    )
    for setting, kinds in found.items():
        for kind, times in sorted(kinds.items()):
            print(f"  {setting:6s} {kind:9s} {statistics.fmean(times):.3f}  ({len(times)})")
    mean = {(s, k): statistics.fmean(t) for s, kinds in found.items() for k, t in kinds.items()}
    loaded = statistics.fmean(found["loaded"]["fresh"] + found["loaded"]["continued"])
    alone = statistics.fmean(found["alone"]["fresh"] + found["alone"]["continued"])
    print(f"RATIO loaded / alone (mean epoch time): {loaded / alone:.2f}x  (target <= 1.5x)")
    ratio = mean["loaded", "continued"] / mean["loaded", "fresh"]
    print(f"RATIO continued / fresh under load (mean epoch time): {ratio:.2f}x  (target <= 1.5x)")


if __name__ == "__main__":
    main()
