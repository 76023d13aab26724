"""Sweep throughput: trials/hour of the smoke sweep with 1 and with 2 CPU worker processes.

Both sweeps run the same 6 trials (``sweeps/smoke.yaml``, its seed runs left out) with pruning off, so both do the same
work; each in a fresh folder, one after the other. ``--devices cpu:1`` gives its one worker every
core as torch threads; ``--devices cpu:2`` gives each worker half. The rate is what the sweep prints
(finished trials / wall time from the launcher's start, start-up included).

Ratio line: 2 workers / 1 worker (target >= 1.8x).
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile

from lightning_attn.resources import sweeps_dir


def trials_per_hour(workers: int, extra: list[str]) -> tuple[float, str]:
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [
            sys.executable,
            "-m",
            "lightning_attn",
            "sweep",
            str(sweeps_dir() / "smoke.yaml"),
            "--devices",
            f"cpu:{workers}",
            "pruner.kind=none",
            "seeds=[]",
            *extra,
        ]
        proc = subprocess.run(cmd, cwd=tmp, capture_output=True, text=True)
        line = next((x for x in proc.stdout.splitlines() if "trials/hour" in x), None)
        if proc.returncode != 0 or line is None:
            sys.exit(f"sweep with {workers} worker(s) failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
        return float(re.search(r"([\d.]+) trials/hour", line).group(1)), line.strip()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("overrides", nargs="*", help="passed to the sweep, e.g. n_trials=2")
    args = parser.parse_args()
    print("sweep scaling: sweeps/smoke.yaml, pruning off")
    rates = {}
    for workers in (1, 2):
        rates[workers], line = trials_per_hour(workers, args.overrides)
        print(f"  cpu:{workers}  {line}")
    print(f"RATIO sweep scaling (2 workers / 1 worker, trials/hour): {rates[2] / rates[1]:.2f}x  (target >= 1.8x)")


if __name__ == "__main__":
    main()
