"""Timing several pieces of work side by side: interleaved, randomised rounds in one process, and each one's time
as a ratio to a reference's with an interval over the rounds.

Each round times every piece of work once, in a fresh random order (A B C, C A B, …), so whatever the machine does
meanwhile — another process, a frequency change — falls on all of them alike and cancels in the per-round ratios.
A piece's *block* is as many calls as take about ``block_s`` (calibrated once, after warm-up calls that are not
timed), timed with :class:`torch.utils.benchmark.Timer` (which fixes the thread count and waits for a GPU).

:func:`compare` turns the rounds into ratios: the median of the per-round ratios, with the sign test's
distribution-free interval over rounds, at a level that holds for all the ratios of one pass together
(Bonferroni) — the time of a round can jump when other work takes the core, and an interval that assumes normal
noise (Student's t) then claims differences that are not there — and the noise flag of each piece's per-round
times (interquartile range over median, as ``torch.utils.benchmark`` warns at 10 %). A ratio is a difference only
where its interval excludes 1 *and* it is at least :data:`MIN_DIFFERENCE` from 1: anything else is "not shown
different" (or, where the interval excludes 1, "within 5 %").
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, fields

import numpy as np

ALPHA = 0.05  # for the whole pass: every ratio's interval together
MIN_DIFFERENCE = 0.05  # a ratio within 5 % of 1 is never called a difference
NOISY = 0.10  # interquartile range over median of a piece's per-round times: above it, the figure is noisy


@dataclass
class Rounds:
    """Seconds per call of each piece of work, one figure per round (in :attr:`names`' order)."""

    names: list[str]
    seconds: dict[str, list[float]] = field(default_factory=dict)
    calls: dict[str, int] = field(default_factory=dict)  # calls per timed block
    threads: int = 1

    def median(self, name: str) -> float:
        return float(np.median(self.seconds[name]))

    def median_interval(self, name: str, level: float = 0.95) -> tuple[float, float]:
        """A distribution-free interval of the median per-call time (:func:`median_interval`)."""
        return median_interval(self.seconds[name], level)

    def spread(self, name: str) -> float:
        """Interquartile range over median of the per-round times."""
        q1, q2, q3 = np.percentile(self.seconds[name], [25, 50, 75])
        return float((q3 - q1) / q2) if q2 > 0 else 0.0

    def only(self, names: Sequence[str], *, renamed: Sequence[str] | None = None) -> Rounds:
        """The rounds of ``names`` alone, called ``renamed`` if given: a comparison among some of the pieces (one
        kind of work, one pair) with the times they had in the same rounds as the rest."""
        renamed = list(renamed or names)
        pairs = list(zip(names, renamed, strict=True))
        seconds = {new: self.seconds[old] for old, new in pairs}
        calls = {new: self.calls[old] for old, new in pairs if old in self.calls}
        return Rounds(renamed, seconds, calls, threads=self.threads)


def interleaved(
    work: dict[str, Callable[[], object]],
    *,
    rounds: int = 15,
    warmup: int = 2,
    block_s: float = 0.05,
    threads: int | None = None,
    seed: int = 0,
    progress: Callable[[int, int], None] | None = None,
    clock: Callable[[], float] = time.perf_counter,
) -> Rounds:
    """Time each piece of ``work`` (name -> a call) in ``rounds`` interleaved rounds of random order.

    Args:
        work: the calls to time; each does the same fixed work every time it is called.
        rounds: timed rounds (the interval is over them).
        warmup: untimed calls of each piece first (caches, allocator, lazy initialisation).
        block_s: about how long one timed block of calls lasts (calibrated from a warm-up call).
        threads: torch's intra-op threads while timing (default: as now).
        seed: the order of the rounds.
        progress: called with ``(round, rounds)`` after each round.
        clock: what a block is timed by: wall-clock time, or ``time.thread_time`` to count only this thread's work
            (single-threaded work on a machine that other work shares).
    """
    import torch
    from torch.utils import benchmark

    if len(work) < 1 or rounds < 2:
        raise ValueError("timing needs at least one piece of work and two rounds")
    threads = threads or torch.get_num_threads()
    result = Rounds(list(work), {name: [] for name in work}, threads=threads)
    timers = {
        name: benchmark.Timer(stmt="call()", globals={"call": call}, num_threads=threads, timer=clock)
        for name, call in work.items()
    }
    for name, timer in timers.items():
        if warmup:
            timer.timeit(warmup)
        once = timer.timeit(1).mean
        result.calls[name] = max(1, min(1000, round(block_s / max(once, 1e-9))))
    order = np.random.default_rng(seed)
    names = list(work)
    for r in range(rounds):
        for i in order.permutation(len(names)):
            name = names[i]
            result.seconds[name].append(float(timers[name].timeit(result.calls[name]).mean))
        if progress is not None:
            progress(r + 1, rounds)
    return result


@dataclass(frozen=True)
class Ratio:
    """One piece's time over the reference's: ``ratio`` below 1 is faster."""

    name: str
    reference: str
    ratio: float  # the median of the per-round ratios
    low: float
    high: float
    level: float  # the interval's confidence (Bonferroni over the pass's ratios)
    noisy: bool  # either piece's per-round times spread by more than NOISY
    enough: bool = True  # enough rounds for an interval at that level (else no difference is claimed)

    def as_dict(self) -> dict:
        """The fields, with the verdict and its words (what a report reads without this module)."""
        return {f.name: getattr(self, f.name) for f in fields(self)} | {"verdict": self.verdict, "words": self.words()}

    @classmethod
    def from_dict(cls, data: dict) -> Ratio:
        return cls(**{f.name: data[f.name] for f in fields(cls)})

    def inverse(self) -> Ratio:
        """The reference's time over this piece's."""
        return Ratio(
            self.reference, self.name, 1 / self.ratio, 1 / self.high, 1 / self.low, self.level, self.noisy, self.enough
        )

    @property
    def verdict(self) -> str:
        """``faster``, ``slower`` or ``same``: a difference only where the interval excludes 1 and the ratio is at
        least :data:`MIN_DIFFERENCE` from it."""
        if not self.enough:
            return "same"
        if self.high < 1 and self.ratio <= 1 - MIN_DIFFERENCE:
            return "faster"
        if self.low > 1 and self.ratio >= 1 + MIN_DIFFERENCE:
            return "slower"
        return "same"

    def words(self) -> str:
        """E.g. ``hard 1.32× slower than soft (time ratio 1.25×–1.40×)``, ``hard within 5% of soft's speed (…)`` (a
        difference too small to count) or ``hard not shown different from soft (…)``."""
        interval = f"{_times(self.low)}–{_times(self.high)}"
        if self.verdict == "faster":
            return f"{self.name} {1 / self.ratio:.2f}× faster than {self.reference} (time ratio {interval})"
        if self.verdict == "slower":
            return f"{self.name} {self.ratio:.2f}× slower than {self.reference} (time ratio {interval})"
        if not self.enough:
            return f"{self.name} not told apart from {self.reference}: too few rounds for an interval at this level"
        if self.low > 1 or self.high < 1:  # a difference, but under MIN_DIFFERENCE: not counted
            return f"{self.name} within {MIN_DIFFERENCE:.0%} of {self.reference}'s speed (time ratio {interval})"
        return f"{self.name} not shown different from {self.reference} (time ratio {interval})"


def _times(value: float) -> str:
    return f"{value:.2f}×"


def median_interval(values: list[float], level: float) -> tuple[float, float]:
    """The order statistics around the median of ``values`` that cover it with probability ``level`` whatever
    their distribution (the sign test's interval): the r-th smallest to the r-th largest, r as large as ``level``
    allows — the whole range where even that covers less (too few values: see :func:`covers`)."""
    from scipy import stats

    ordered = sorted(values)
    n = len(ordered)
    r = 1  # covers the median with probability 1 - 2 P(B(n, 1/2) <= r - 1)
    while r < (n + 1) // 2 and 1 - 2 * stats.binom.cdf(r, n, 0.5) >= level:
        r += 1
    return ordered[r - 1], ordered[n - r]


def covers(n: int, level: float) -> bool:
    """Whether ``n`` values are enough for a sign-test interval at ``level``: their whole range covers the median
    with probability ``1 - 2 / 2**n``."""
    return 1 - 2 * 0.5**n >= level


def compare(rounds: Rounds, reference: str, *, family: int | None = None, alpha: float = ALPHA) -> list[Ratio]:
    """Every other piece's time against ``reference``'s: the median of the per-round ratios, with the sign test's
    interval (:func:`median_interval`) at a level that holds together for ``family`` ratios (default: the ones
    returned; give the pass's total when it makes several comparisons). Distribution-free: a round disturbed by
    a burst of other work cannot make a difference out of nothing; with the rounds of a pass and a large family
    it is the range of the per-round ratios, so a difference is claimed only when every round agrees."""
    others = [n for n in rounds.names if n != reference]
    family = family or max(1, len(others))
    level = 1 - alpha / family
    ref = np.asarray(rounds.seconds[reference])
    ratios = []
    for name in others:
        per_round = (np.asarray(rounds.seconds[name]) / ref).tolist()
        low, high = median_interval(per_round, level)
        noisy = max(rounds.spread(name), rounds.spread(reference)) > NOISY
        enough = covers(len(per_round), level)
        ratios.append(Ratio(name, reference, float(np.median(per_round)), low, high, level, noisy, enough))
    return ratios
