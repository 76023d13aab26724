"""Every mechanism, with the default settings, on both tasks' built-in data: the table docs/results.md holds.

Each run is ``lightning-attn train task=<task> attention=<mechanism>`` (defaults: trained to convergence,
the epoch cap only a cap), ``--parallel`` at a time with the cores split between them, all into one MLflow
store. Runs already in the store are not repeated, so an interrupted table resumes. The table: the test
metric (BLEU; captioning BLEU-4 and exact captions), alignment against the gold attention (accuracy and
AER), sparsity (share of exactly-zero weights, effective number of positions read), the gradient
estimator's variance and signal-to-noise ratio (mechanisms that sample or relax their choice), epochs to
convergence, training wall time and greedy inference latency at batch 1. With ``--seeds`` each pair is
trained once per seed, and the table gives the test metric's mean ± 95 % interval over the seeds (from
three) and every other column's mean.

    python benchmarks/mechanisms.py --store sqlite:///results.db            # everything (hours on 2 cores)
    python benchmarks/mechanisms.py --tasks translation --mechanisms soft hard --seeds 0 1 2
    python benchmarks/mechanisms.py --store sqlite:///patience6.db --set early_stopping.patience=6   # changed runs
    python benchmarks/mechanisms.py --store sqlite:///b.db --also sqlite:///a.db    # one table from two stores
    python benchmarks/mechanisms.py --store sqlite:///b.db --table-only --reference hard   # the tables, no training
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
import warnings
from concurrent.futures import ThreadPoolExecutor

from mlflow import MlflowClient

from lightning_attn.attention import MECHANISMS
from lightning_attn.config import EarlyStoppingConfig, RunConfig
from lightning_attn.report.significance import welch_p
from lightning_attn.tasks import TASKS
from lightning_attn.tracking.convergence import longest_wait
from lightning_attn.tracking.seeds import seed_stats

EXPERIMENT = "mechanisms"
COLUMNS = [
    ("accuracy", "test metric", "{:.2f}"),
    ("exact", "exact captions", "{:.1f} %"),
    ("test/align_acc", "align acc", "{:.3f}"),
    ("test/align_aer", "AER", "{:.3f}"),
    ("test/attention_zero_share", "zero weights", "{:.0%}"),
    ("test/attention_positions", "positions read", "{:.2f}"),
    ("stability/grad_estimator_var", "estimator var", "{:.3g}"),
    ("stability/grad_estimator_snr", "estimator SNR", "{:.3g}"),  # scale-free: comparable across mechanisms
    ("run/epochs", "epochs", "{:.0f}"),
    ("converged", "converged", "{}"),
    ("train_min", "train time (min)", "{:.1f}"),
    ("speed/infer_latency_ms_p50_b1", "latency b1 (ms)", "{:.2f}"),
]


def done(clients: list[MlflowClient]) -> dict[tuple[str, str, int], tuple[object, MlflowClient]]:
    """The finished runs and their stores, by (task, mechanism, seed); the first store that has a pair wins."""
    found: dict[tuple[str, str, int], tuple[object, MlflowClient]] = {}
    for client in reversed(clients):
        exp = client.get_experiment_by_name(EXPERIMENT)
        if exp is None:
            continue
        runs = client.search_runs([exp.experiment_id], "attributes.status = 'FINISHED'", max_results=1000)
        trained = [r for r in runs if "task" in r.data.tags]  # not the child runs `lightning-attn evaluate` adds
        found |= {(r.data.tags["task"], r.data.tags["attention"], int(r.data.tags["seed"])): (r, client)
                  for r in trained}  # fmt: skip
    return found


def train(
    store: str, task: str, mechanism: str, seed: int, threads: int, overrides: list[str]
) -> tuple[str, str, int, float, int]:
    env = {**os.environ, "MLFLOW_TRACKING_URI": store, "OMP_NUM_THREADS": str(threads)}
    cmd = [sys.executable, "-m", "lightning_attn", "train", f"task={task}", f"attention={mechanism}", f"seed={seed}",
           f"threads={threads}", f"logger.experiment_name={EXPERIMENT}",
           "trainer.enable_progress_bar=false", *overrides]  # fmt: skip
    start = time.monotonic()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    elapsed = time.monotonic() - start
    print(f"{task:<12} {mechanism:<10} seed {seed} exit {proc.returncode} in {elapsed / 60:.1f} min", flush=True)
    if proc.returncode:
        print(proc.stderr[-2000:], flush=True)
    return task, mechanism, seed, elapsed, proc.returncode


def row_values(task: str, run, client: MlflowClient) -> dict[str, object]:
    m = run.data.metrics
    values: dict[str, object] = dict(m)
    values["accuracy"] = m.get(TASKS[task].headline)
    values["exact"] = m.get("test/exact")
    values["converged"] = m.get("run/converged")
    # the epochs' own times (training and validation), not the run's wall clock: that also holds the test and
    # latency passes, and the gap of a run stopped in one session and resumed (train --resume) in another
    epochs = client.get_metric_history(run.info.run_id, "speed/epoch_time_s")
    values["train_min"] = sum(m.value for m in epochs) / 60 if epochs else None
    values["wait"] = waited(task, run, client)
    return values


def waited(task: str, run, client: MlflowClient) -> int | None:
    """The run's longest stretch of epochs without progress before it progressed again, by its own early-stopping
    settings: a patience must exceed it for the run to reach its best (``None`` without its validation curves)."""
    params, defaults = run.data.params, EarlyStoppingConfig()

    def setting(key: str) -> str | None:
        value = params.get(f"early_stopping.{key}", str(getattr(defaults, key)))
        return None if value == "None" else value

    def curve(key: str) -> list[float]:
        return [m.value for m in sorted(client.get_metric_history(run.info.run_id, key), key=lambda m: m.step)]

    metric = curve(setting("monitor") or TASKS[task].monitor)
    loss_key = setting("loss_monitor")
    loss = curve(loss_key) if loss_key else None
    if not metric or (loss is not None and len(loss) != len(metric)):
        return None
    return longest_wait(metric, TASKS[task].mode, float(setting("min_delta")), loss, float(setting("loss_min_delta")))


def cell(key: str, fmt: str, values: list[dict[str, object]]) -> str:
    """One column over a pair's seeds: the test metric as mean ± interval, ``converged`` as a count, the
    rest as a mean."""
    present = [v[key] for v in values if v.get(key) is not None]
    if not present:
        return "—"
    if key == "converged":
        converged = sum(present)
        if len(present) == 1:
            return "yes" if converged else "no (cap)"
        return f"{converged:.0f} of {len(present)}"
    if key == "accuracy" and len(present) > 1:
        return seed_stats(present).describe()
    return fmt.format(sum(present) / len(present))


def by_pair(clients: list[MlflowClient]) -> dict[tuple[str, str], list[dict[str, object]]]:
    """Every finished run's values, by (task, mechanism), in seed order."""
    pairs: dict[tuple[str, str], list[dict[str, object]]] = {}
    for (task, mechanism, seed), (run, client) in sorted(done(clients).items()):
        pairs.setdefault((task, mechanism), []).append(row_values(task, run, client) | {"seed": seed})
    return pairs


def table(pairs: dict[tuple[str, str], list[dict[str, object]]]) -> str:
    header = ["task", "mechanism", "seeds", *(c[1] for c in COLUMNS)]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for (task, mechanism), values in pairs.items():
        cells = [cell(key, fmt, values) for key, _, fmt in COLUMNS]
        lines.append(f"| {task} | {mechanism} | {len(values)} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def seed_table(pairs: dict[tuple[str, str], list[dict[str, object]]], reference: str | None) -> str:
    """Each seed's test metric (epochs trained; epoch of the best checkpoint; longest wait without progress
    before it, see :func:`waited`), for the pairs with several
    seeds, and with ``reference`` each mechanism's difference of means from it on the same task and two
    two-sided p-values: Welch's t-test and the Mann-Whitney U test, the one to read when a task's runs end on
    a few plateaus (a two-valued sample is far from the normal the t-test assumes)."""
    from scipy import stats

    several = {pair: values for pair, values in pairs.items() if len(values) > 1}
    if not several:
        return ""
    seeds = sorted({v["seed"] for values in several.values() for v in values})
    extra = [f"Δ vs {reference}", "p (Welch)", "p (Mann-Whitney)"] if reference else []
    header = ["task", "mechanism", *(f"seed {s}" for s in seeds), *extra]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for (task, mechanism), values in several.items():
        by_seed = {v["seed"]: v for v in values}
        cells = []
        for s in seeds:
            v = by_seed.get(s)
            if v is None or v.get("accuracy") is None:
                cells.append("—")
                continue
            notes = [f"{v[k]:.0f}" for k in ("run/epochs", "run/best_epoch", "wait") if v.get(k) is not None]
            cells.append(f"{v['accuracy']:.2f}" + (f" ({'; '.join(notes)})" if notes else ""))
        ref = several.get((task, reference or ""))
        if reference and ref is not None and mechanism != reference:
            a = [v["accuracy"] for v in values if v.get("accuracy") is not None]
            b = [v["accuracy"] for v in ref if v.get("accuracy") is not None]
            with warnings.catch_warnings():  # scipy's "nearly identical data" warning: seeds that all reach 100
                warnings.simplefilter("ignore", RuntimeWarning)
                welch = welch_p(a, b)
            tied = len(set(a) | set(b)) == 1  # the U test's variance is then zero
            rank = 1.0 if tied else stats.mannwhitneyu(a, b, alternative="two-sided").pvalue
            cells += [f"{sum(a) / len(a) - sum(b) / len(b):+.2f}", "—" if welch is None else f"{welch:.2f}",
                      f"{rank:.2f}"]  # fmt: skip
        elif reference:
            cells += ["—"] * len(extra)
        lines.append(f"| {task} | {mechanism} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--store", default=os.environ.get("MLFLOW_TRACKING_URI", "sqlite:///mechanisms.db"))
    parser.add_argument("--tasks", nargs="*", default=sorted(TASKS))
    parser.add_argument("--mechanisms", nargs="*", default=sorted(MECHANISMS))
    parser.add_argument("--parallel", type=int, default=2, help="runs at a time (the cores are split)")
    parser.add_argument("--threads", type=int, help="torch threads per run (default: the cores / --parallel)")
    parser.add_argument("--seeds", nargs="+", type=int, default=[RunConfig.seed], help="one run per seed")
    parser.add_argument("--set", nargs="+", default=[], metavar="KEY=VALUE",
                        help="config changes for every run (e.g. early_stopping.patience=6); runs are keyed by "
                        "task, mechanism and seed only, so give changed runs their own --store")  # fmt: skip
    parser.add_argument("--also", nargs="+", default=[], metavar="STORE",
                        help="more stores whose finished runs count as done and join the table (never written to): "
                        "a table measured across sessions or machines")  # fmt: skip
    parser.add_argument(
        "--reference",
        choices=sorted(MECHANISMS),
        help="compare every mechanism's seeds with this one's on the same task (the per-seed table)",
    )
    parser.add_argument("--table-only", action="store_true", help="train nothing: the tables of the stores as they are")
    args = parser.parse_args()
    clients = [MlflowClient(store) for store in (args.store, *args.also)]
    have = done(clients)
    todo = [(t, m, s) for s in args.seeds for t in args.tasks for m in args.mechanisms if (t, m, s) not in have]
    if args.table_only:
        todo = []
    threads = args.threads or max(1, (os.cpu_count() or 1) // args.parallel)
    stores = ", ".join((args.store, *args.also))
    print(f"{len(todo)} runs to do ({len(have)} in {stores} already), {args.parallel} at a time, "
          f"{threads} thread(s) each" + (f", with {' '.join(args.set)}" if args.set else ""), flush=True)  # fmt: skip
    with ThreadPoolExecutor(args.parallel) as pool:
        list(pool.map(lambda job: train(args.store, *job, threads, args.set), todo))
    pairs = by_pair(clients)
    print(table(pairs))
    per_seed = seed_table(pairs, args.reference)
    if per_seed:
        print(
            "\nEach seed's test metric (epochs trained; epoch of the best checkpoint; longest wait without "
            "progress before it):\n\n" + per_seed
        )


if __name__ == "__main__":
    main()
