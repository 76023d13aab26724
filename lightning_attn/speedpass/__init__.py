"""The speed pass: mechanisms timed side by side in one process, on fixed work, with memory that belongs to the
model — over trained runs (:mod:`.runs`, ``lightning-attn benchmark runs``) and against input size
(:mod:`.sizes`, ``lightning-attn benchmark sizes``).

Rooms: :mod:`.timing` (interleaved rounds, ratios with intervals), :mod:`.memory` (peak tensor memory),
:mod:`.workloads` (fixed decode length, a training step).
"""

from .runs import Pass, log_pass
from .runs import measure as measure_runs
from .sizes import Sizes, plot
from .sizes import measure as measure_sizes
from .timing import Ratio, Rounds, compare, interleaved

__all__ = [
    "Pass",
    "Ratio",
    "Rounds",
    "Sizes",
    "compare",
    "interleaved",
    "log_pass",
    "measure_runs",
    "measure_sizes",
    "plot",
]
