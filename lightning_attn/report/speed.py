"""What a report may say about speed and memory: only what a speed pass measured (``lightning-attn benchmark runs``,
run after every comparison) — mechanisms timed side by side in one process, on fixed work, every pair's time ratio
with an interval that holds for the whole pass. Pure: the pass's JSON in, answers out.

A mechanism is *faster* than another only where the pass says so (the interval excludes 1 and the ratio is at
least 5 % from it); anything else is not a difference. Without a pass a report names no speed
winner: the figures each run measured while training are diagnostics, taken under whatever load the machine had.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..tracking import tags as T

KINDS = T.SPEED_PASS_KINDS  # the kinds of work a pass times (their words: wording.SPEED_WORK)
DECODING = "greedy"  # the cost a decision without constraints weighs accuracy against
PREFIX = "speed_pass/"  # constraint metrics: speed_pass/<kind>_ms, speed_pass/<kind>_mib


def split(metric: str) -> tuple[str, str]:
    """A ``speed_pass/<kind>_<unit>`` metric's kind of work and unit: ``("greedy", "ms")``."""
    kind, _, unit = metric.removeprefix(PREFIX).rpartition("_")
    return kind, unit


@dataclass(frozen=True)
class Timed:
    """One mechanism's figure for one kind of work, and its 95 % interval (the median's, over the rounds)."""

    value: float
    low: float
    high: float
    rounds: int


@dataclass(frozen=True)
class Compared:
    """One mechanism's time over another's, as the pass stated it."""

    ratio: float
    low: float
    high: float
    verdict: str  # faster | slower | same
    words: str


class SpeedPass:
    """A task's speed pass, read from its JSON."""

    def __init__(self, data: dict):
        self.data = data
        self.task: str = data["task"]
        self.reference: str = data["reference"]
        self.settings: dict = data.get("settings", {})
        self._figures = {f["mechanism"]: f for f in data["figures"]}

    def kinds(self) -> list[str]:
        return [k for k in KINDS if k in self.data["ratios"]]

    def compared(self, kind: str, x: str, y: str) -> Compared | None:
        """``x``'s time over ``y``'s for ``kind`` of work (None: the pass did not time both)."""
        for r in self.data["ratios"].get(kind, []):
            if (r["name"], r["reference"]) == (x, y):
                return Compared(r["ratio"], r["low"], r["high"], r["verdict"], r["words"])
        return None

    def faster(self, kind: str, x: str, y: str) -> bool:
        """Whether the pass shows ``x`` faster than ``y`` at ``kind`` of work."""
        found = self.compared(kind, x, y)
        return found is not None and found.verdict == "faster"

    def figure(self, metric: str, mechanism: str) -> Timed | None:
        """A constraint's metric (``speed_pass/greedy_ms``, ``speed_pass/train_mib``, …) for ``mechanism``."""
        if not metric.startswith(PREFIX) or mechanism not in self._figures:
            return None
        kind, unit = split(metric)
        f = self._figures[mechanism]
        rounds = int(self.settings.get("rounds", 0))
        if unit == "ms" and kind in f["ms"]:
            low, high = f.get("interval", {}).get(kind, (f["ms"][kind], f["ms"][kind]))
            return Timed(f["ms"][kind], low, high, rounds)
        if unit == "mib" and kind in f["mib"]:
            return Timed(f["mib"][kind], f["mib"][kind], f["mib"][kind], rounds)  # counted, not sampled
        return None

    def fastest(self, kind: str, among: list[str]) -> str | None:
        """The one of ``among`` the pass shows faster than each of the others, if there is one."""
        found = [x for x in among if all(self.faster(kind, x, y) for y in among if y != x)]
        return found[0] if len(found) == 1 else None

    def rows(self) -> list[dict]:
        """Each mechanism's figures, for the report's speed table."""
        out = []
        for mechanism, f in self._figures.items():
            row = {"mechanism": mechanism}
            for kind in KINDS:
                if kind in f["ms"]:
                    row[f"{kind}_ms"], row[f"{kind}_mib"] = f["ms"][kind], f["mib"][kind]
                    against = self.compared(kind, mechanism, self.reference)
                    row[f"{kind}_vs_reference"] = against.words if against else ""
            out.append(row)
        return out


def passes(data: dict[str, dict]) -> dict[str, SpeedPass]:
    """Each task's pass, from the collected JSON (``Collected.speed_passes``)."""
    return {task: SpeedPass(d) for task, d in data.items()}
