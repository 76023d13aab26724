"""The speed pass on a quiet and on a loaded machine: do its ratios between mechanisms hold, and does the same
checkpoint timed twice come out the same?

A small comparison (the demo's task and model: soft, hard and the uniform control, one seed each, a few epochs —
speed does not depend on accuracy) is trained once with ``lightning-attn compare --no-speed-pass``. Then the pass
(``lightning-attn benchmark runs``, one thread) runs, in alternation, alone and beside one busy loop per core at
normal priority (``--rounds-of-each`` times each), and once as an A/A check: soft's checkpoint under two names.

Ratio lines: for each mechanism and kind of work, its time ratio to soft on the loaded machine over the same on
the quiet one (target: within 10 % of 1), and the A/A verdicts (target: "same" for every kind of work).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

DEMO = [
    "data.n_train=1000",
    "data.n_val=200",
    "data.n_test=200",
    "data.lexicon_share=0.4",
    "model.embed_dim=32",
    "model.encoder_hidden=32",
    "model.decoder_hidden=64",
    "task.beam_size=4",
    "trainer.max_epochs=3",
    "early_stopping.enabled=false",
    "trainer.enable_progress_bar=false",
]


def lightning_attn(*args: str, cwd: Path) -> str:
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    done = subprocess.run(
        [sys.executable, "-m", "lightning_attn", *args], cwd=cwd, env=env, capture_output=True, text=True
    )
    if done.returncode:
        sys.exit(f"lightning-attn {' '.join(args)} failed:\n{done.stdout[-2000:]}{done.stderr[-2000:]}")
    return done.stdout


def last_pass(cwd: Path) -> dict:
    from mlflow import MlflowClient

    client = MlflowClient(f"sqlite:///{cwd / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("compare-translation").experiment_id
    run = client.search_runs(
        [experiment],
        "tags.`lightning_attn.role` = 'speed_pass'",
        order_by=["attributes.start_time DESC"],
        max_results=1,
    )[0]
    return json.loads(Path(client.download_artifacts(run.info.run_id, "speed_pass.json")).read_text())


def ratios(data: dict) -> dict[tuple[str, str], float]:
    return {
        (r["name"], kind): r["ratio"]
        for kind, found in data["ratios"].items()
        for r in found
        if r["reference"] == "soft"
    }


def main() -> None:
    os.environ["MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"] = "false"  # a few small downloads: no bar for each
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds-of-each", type=int, default=2, help="passes alone and loaded, alternating")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        cwd = Path(tmp)
        lightning_attn(
            "compare", "attention=soft,hard,uniform", "seeds=0", "--devices", "cpu:2", "--no-speed-pass", *DEMO, cwd=cwd
        )
        timed = ["benchmark", "runs", "--experiment", "compare-translation", "--threads", "1"]
        found: dict[str, list[dict]] = {"alone": [], "loaded": []}
        for _ in range(args.rounds_of_each):
            for condition in ("alone", "loaded"):
                loops = []
                if condition == "loaded":
                    loops = [
                        subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(os.cpu_count() or 1)
                    ]
                try:
                    lightning_attn(*timed, cwd=cwd)
                finally:
                    for loop in loops:
                        loop.kill()
                        loop.wait()
                data = last_pass(cwd)
                found[condition].append(ratios(data))
        from mlflow import MlflowClient

        client = MlflowClient(f"sqlite:///{cwd / 'mlflow.db'}")
        experiment = client.get_experiment_by_name("compare-translation").experiment_id
        soft = client.search_runs([experiment], "tags.mechanism = 'soft' and attributes.status = 'FINISHED'")
        (soft_run,) = [r for r in soft if "mlflow.parentRunId" in r.data.tags]  # the seed run, not its parent
        lightning_attn(
            "benchmark",
            "runs",
            "--run",
            f"{soft_run.info.run_id}=soft",
            "--run",
            f"{soft_run.info.run_id}=soft-again",
            "--threads",
            "1",
            cwd=cwd,
        )
        aa = last_pass(cwd)
    print(
        f"speed pass, {data['settings'].get('rounds')} rounds, 1 thread: {args.rounds_of_each} passes alone and "
        f"{args.rounds_of_each} beside "
        f"{os.cpu_count()} busy loop(s) at normal priority, alternating"
    )
    worst = 0.0
    for key in sorted(found["alone"][0]):
        alone = [r[key] for r in found["alone"]]
        loaded = [r[key] for r in found["loaded"]]
        change = (sum(loaded) / len(loaded)) / (sum(alone) / len(alone))
        worst = max(worst, abs(change - 1))
        print(
            f"  {key[0]:<8} {key[1]:<6} time ratio to soft: alone {', '.join(f'{v:.3f}' for v in alone)}; "
            f"loaded {', '.join(f'{v:.3f}' for v in loaded)}; loaded / alone {change:.3f}"
        )
    verdicts = [r["verdict"] for found_ in aa["ratios"].values() for r in found_ if r["name"] == "soft-again"]
    words = [r["words"] for found_ in aa["ratios"].values() for r in found_ if r["name"] == "soft-again"]
    print("  A/A (soft's checkpoint twice): " + "; ".join(words))
    print(f"RATIO A/A verdicts 'same': {verdicts.count('same')} of {len(verdicts)}  (target: all)")
    print(f"RATIO speed pass ratios, loaded / alone: worst {1 + worst:.3f}x  (target <= 1.10)")


if __name__ == "__main__":
    main()
