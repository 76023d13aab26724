"""Sweep cost at scale: tiny trials (one training batch each) on 2 CPU workers, 20 and then 200 of them,
with the Optuna storage on the journal file and on PostgreSQL, side by side in one run.

For each (storage, N) it measures, on a fresh sweep:

* trials/hour — finished trials / the whole command's wall time, measured here from before the process starts:
  opening the storage (creating PostgreSQL's tables, or the journal file) and start-up included (the rate the
  sweep prints starts its clock after the storage is open, so it leaves out what differs most);
* the launcher's overhead per trial — the workers' time not spent inside the trials' own MLflow runs
  (asking Optuna under the sweep lock, creating and closing runs, telling Optuna), per trial:
  (wall × workers − Σ run durations) / N;
* the report's time — ``lightning-attn report`` over the sweep's N runs.

PostgreSQL is a real server started for the benchmark on loopback (``tests/servers.py`` does the work:
it needs ``initdb``, or root to apt-get it). MLflow is a local SQLite file in both cases, so the storages
are what differs. Ratio line: PostgreSQL / journal trials/hour at 200 trials.

    python benchmarks/sweep_storage_scale.py            # 20 and 200
    python benchmarks/sweep_storage_scale.py --sizes 10  # a quick look
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.servers import start_postgres, stop_postgres  # noqa: E402

ONE_BATCH = [
    "data.n_train=32",
    "data.n_val=16",
    "data.n_test=16",
    "data.batch_size=16",
    "model.embed_dim=16",
    "model.encoder_hidden=16",
    "model.decoder_hidden=32",
    "attention.hidden_dim=16",
    "trainer.max_epochs=1",
    "trainer.limit_train_batches=1",
    "trainer.limit_val_batches=1",
    "early_stopping.enabled=false",
    "task.beam_size=1",
    "task.attention_pictures_every=0",
    "speed.latency_calls_b1=1",
    "speed.latency_calls_batch=1",
    "speed.latency_warmup=0",
]
WORKERS = 2


def run_sweep(folder: Path, n: int, storage: str | None) -> dict[str, float]:
    name = f"scale{n}"
    (folder / f"{name}.yaml").write_text(
        f"name: {name}\ntask: translation\noverrides: [{', '.join(ONE_BATCH)}]\nmechanisms: {{soft: {{}}}}\n"
        f"space: {{task.lr: {{type: float, low: 1.0e-3, high: 1.0e-2, log: true}}}}\nn_trials: {n}\n"
        "pruner: {kind: none}\n"
    )
    cmd = [sys.executable, "-m", "lightning_attn", "sweep", f"{name}.yaml", "--devices", f"cpu:{WORKERS}"]
    cmd += ["--storage", storage] if storage else []
    started = time.monotonic()
    proc = subprocess.run(cmd, cwd=folder, capture_output=True, text=True)
    wall = time.monotonic() - started
    line = next((x for x in proc.stdout.splitlines() if "trials/hour" in x), None)
    if proc.returncode != 0 or line is None:
        sys.exit(f"sweep of {n} on {storage or 'journal'} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    from mlflow import MlflowClient

    client = MlflowClient(f"sqlite:///{folder / 'mlflow.db'}")
    runs = client.search_runs([client.get_experiment_by_name(name).experiment_id], max_results=5000)
    trials = [r for r in runs if "optuna.trial" in r.data.tags]
    inside = sum((r.info.end_time - r.info.start_time) / 1000 for r in trials)
    started = time.monotonic()
    report = subprocess.run(
        [sys.executable, "-m", "lightning_attn", "report", "--experiment", name, "--out", "r"],
        cwd=folder,
        capture_output=True,
        text=True,
    )
    report_s = time.monotonic() - started
    if report.returncode not in (0, 1) or not (folder / "r" / "report.json").is_file():
        sys.exit(f"report failed:\n{report.stdout[-2000:]}\n{report.stderr[-2000:]}")
    return {
        "trials": len(trials),
        "per_hour": 3600 * len(trials) / wall,
        "printed_per_hour": float(re.search(r"([\d.]+) trials/hour", line).group(1)),
        "wall_s": wall,
        "overhead_s": (wall * WORKERS - inside) / len(trials),
        "run_s": inside / len(trials),
        "report_s": report_s,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[20, 200])
    args = parser.parse_args()
    pg = start_postgres()
    results: dict[tuple[str, int], dict[str, float]] = {}
    try:
        print(f"sweep storage scale: one-batch trials on {WORKERS} CPU workers; MLflow on SQLite")
        print(
            f"  {'storage':<10} {'trials':>6} {'trials/h':>9} {'printed':>8} {'wall s':>8} {'in run s':>9} "
            f"{'overhead s/trial':>17} {'report s':>9}"
        )
        for n in args.sizes:
            for kind in ("journal", "postgres"):
                storage = pg.url(pg.create_database(f"scale_{n}")) if kind == "postgres" else None
                with tempfile.TemporaryDirectory() as tmp:
                    r = run_sweep(Path(tmp), n, storage)
                results[kind, n] = r
                print(
                    f"  {kind:<10} {r['trials']:>6} {r['per_hour']:>9.0f} {r['printed_per_hour']:>8.0f} "
                    f"{r['wall_s']:>8.1f} {r['run_s']:>9.2f} "
                    f"{r['overhead_s']:>17.2f} {r['report_s']:>9.1f}",
                    flush=True,
                )
    finally:
        stop_postgres(pg)
    small, large = min(args.sizes), max(args.sizes)
    if small != large:
        for kind in ("journal", "postgres"):
            a, b = results[kind, small], results[kind, large]
            print(
                f"  {kind}: {small} -> {large} trials: overhead/trial {a['overhead_s']:.2f} -> "
                f"{b['overhead_s']:.2f} s "
                f"({b['overhead_s'] / a['overhead_s']:.2f}x), report {a['report_s']:.1f} -> {b['report_s']:.1f} s "
                f"({b['report_s'] / a['report_s']:.2f}x for {large / small:.0f}x the runs)"
            )
    ratio = results["postgres", large]["per_hour"] / results["journal", large]["per_hour"]
    print(f"RATIO postgres / journal trials/hour (whole command's wall time) at {large} trials: {ratio:.2f}x")


if __name__ == "__main__":
    main()
