"""Peak memory of a default trial: ``lightning-attn train`` with the default settings, in its own process.

The run is shortened to one epoch (``trainer.max_epochs=1``): the data, model, optimiser state and
evaluation are all there after the first epoch, so the peak is the same. Measured as the child
process's peak resident set size (``getrusage(RUSAGE_CHILDREN).ru_maxrss``).

Ratio line: peak RSS / 2 GiB (target <= 1).
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import tempfile


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("overrides", nargs="*", default=[], help="extra run overrides, e.g. task=captioning")
    args = parser.parse_args()
    overrides = ["trainer.max_epochs=1", "trainer.enable_progress_bar=false", *args.overrides]
    with tempfile.TemporaryDirectory() as tmp:
        proc = subprocess.run(
            [sys.executable, "-m", "lightning_attn", "train", *overrides], cwd=tmp, capture_output=True, text=True
        )
    if proc.returncode != 0:
        sys.exit(f"the run failed:\n{proc.stderr[-3000:]}")
    peak_gib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 2**20  # KiB on Linux
    print(f"memory: lightning-attn train {' '.join(overrides)}")
    print(f"  peak RSS {peak_gib * 1024:.0f} MiB")
    print(f"RATIO memory (peak RSS / 2 GiB): {peak_gib / 2:.2f}  (target <= 1)")


if __name__ == "__main__":
    main()
