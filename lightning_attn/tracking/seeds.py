"""Statistics over seeds: mean, standard deviation and a 95 % confidence interval (Student's t)."""

from __future__ import annotations

import math
from dataclasses import dataclass

from scipy import stats

#: seed runs below which a 95 % interval means little: it is not printed, logged or reported (and a
#: report gives no verdict, see ``lightning-attn report --min-seeds``)
MIN_SEEDS_FOR_CI = 3


@dataclass
class SeedStats:
    n: int
    mean: float
    std: float  # sample standard deviation (n - 1); 0 for a single seed
    ci95: float  # half-width: the mean lies in mean ± ci95 with 95 % confidence; nan for a single seed

    @property
    def interval(self) -> bool:
        """Whether there are enough seeds for the interval to mean something."""
        return self.n >= MIN_SEEDS_FOR_CI and math.isfinite(self.ci95)

    def describe(self, digits: int = 2) -> str:
        """``97.21 ± 3.83 (95 % CI, n = 3)``, or ``96.40 (n = 2: no CI)`` with too few seeds."""
        if self.interval:
            return f"{self.mean:.{digits}f} ± {self.ci95:.{digits}f} (95 % CI, n = {self.n})"
        return f"{self.mean:.{digits}f} (n = {self.n}: no CI)"

    @property
    def low(self) -> float:
        return self.mean - self.ci95

    @property
    def high(self) -> float:
        return self.mean + self.ci95


def seed_stats(values: list[float]) -> SeedStats:
    n = len(values)
    if n == 0:
        raise ValueError("no values")
    mean = math.fsum(values) / n
    if n == 1:
        return SeedStats(1, mean, 0.0, math.nan)
    std = math.sqrt(math.fsum((v - mean) ** 2 for v in values) / (n - 1))
    return SeedStats(n, mean, std, float(stats.t.ppf(0.975, n - 1)) * std / math.sqrt(n))


#: metric families summarised over seeds
SEED_METRICS = ("test/", "val/", "speed/", "stability/", "run/")


def summarise_seeds(client, parent_run_id: str, per_seed: list[dict[str, float]]) -> dict[str, SeedStats]:
    """Log ``<metric>_mean``, ``_std`` and (from :data:`MIN_SEEDS_FOR_CI` seeds) ``_ci95`` on the parent run
    for every final metric all seeds share (of the families in :data:`SEED_METRICS`); returns the statistics."""
    if not per_seed:
        return {}
    shared = set.intersection(*(set(m) for m in per_seed))
    summary = {k: seed_stats([m[k] for m in per_seed]) for k in sorted(shared) if k.startswith(SEED_METRICS)}
    for key, st in summary.items():
        values = {"mean": st.mean, "std": st.std} | ({"ci95": st.ci95} if st.interval else {})
        for suffix, value in values.items():
            client.log_metric(parent_run_id, f"{key}_{suffix}", value)
    return summary
