"""Seeds until decided against a fixed number of seeds: the decisions each reaches, their error rates, and the seed
runs each spends — on simulated comparisons judged by the report's own code (lightning_attn.report.simulation).

Two scenarios of three mechanisms, each simulated ``--runs`` times:

* like the demo: one mechanism far below the other two (about 60 BLEU), and two close ones (about 1.5 BLEU
  apart, about one and a half seed standard deviations);
* a global null: three identical mechanisms.

``compare --until-decided`` starts with 3 seeds a side and gives one more seed to each mechanism with a pair
still undecided, up to ``--max-seeds`` (8); the fixed design trains every mechanism ``--max-seeds`` times. Both
are judged by the same family of tests (margin of equivalence 1 BLEU). A decision is *wrong* when it says better
for the worse mechanism or for one of two identical ones, or equivalent for two that differ by more than the margin;
the share of comparisons with any wrong decision is the family-wise error (at most 5 % by design).

Ratio line: seed runs until decided / seed runs of the fixed design, like the demo (target <= 0.6, with the same
or better decisions).
"""

from __future__ import annotations

import argparse

import numpy as np

from lightning_attn.report import simulation

SCENARIOS = {  # logit qualities: 3.0 scores about 84.5 BLEU, 2.87 about 83, 0.0 about 24
    "like the demo": {"a": 3.0, "b": 2.87, "c": 0.0},
    "global null": {"a": 2.0, "b": 2.0, "c": 2.0},
}


def outcomes(compared: simulation.Compared, truth: dict[str, float]) -> tuple[dict[str, int], int]:
    """How many pairs ended better / equivalent / undecided, and how many of those decisions were wrong (every
    true difference in these scenarios is beyond the margin: equivalent is right only for identical ones)."""
    counts = {"better": 0, "equivalent": 0, "undecided": 0}
    wrong = 0
    for t in compared.tests:
        counts[t.outcome or "undecided"] += 1
        gap = truth[t.a] - truth[t.b]  # a: the more accurate by mean
        wrong += (t.outcome == "better" and gap <= 0) or (t.outcome == "equivalent" and gap != 0)
    return counts, wrong


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=200, help="simulated comparisons per scenario and design")
    parser.add_argument("--max-seeds", type=int, default=8)
    args = parser.parse_args()
    print(
        f"seeds until decided (3 to {args.max_seeds} seeds) vs a fixed {args.max_seeds} seeds, {args.runs} simulated "
        "comparisons each; pairs' outcomes summed over them"
    )
    ratios = {}
    for name, truth in SCENARIOS.items():
        rng = np.random.default_rng(2026)
        for design, most in (("until decided", args.max_seeds), ("fixed", None)):
            totals, wrong, runs, any_wrong = {"better": 0, "equivalent": 0, "undecided": 0}, 0, 0, 0
            for _ in range(args.runs):
                if most:
                    compared = simulation.compare(rng, truth, seeds=3, most=most)
                else:
                    compared = simulation.compare(rng, truth, seeds=args.max_seeds)
                counts, bad = outcomes(compared, truth)
                totals = {k: totals[k] + counts[k] for k in totals}
                wrong += bad
                any_wrong += bad > 0
                runs += sum(compared.runs.values())
            per = runs / args.runs
            ratios[name, design] = per
            listing = ", ".join(f"{k} {v}" for k, v in totals.items())
            print(
                f"  {name:14s} {design:13s} seed runs {per:5.1f}  pairs: {listing}; wrong {wrong}, in "
                f"{any_wrong / args.runs:.1%} of comparisons"
            )
    for name in SCENARIOS:
        ratio = ratios[name, "until decided"] / ratios[name, "fixed"]
        print(f"  {name}: until decided / fixed seed runs {ratio:.2f}")
    ratio = ratios["like the demo", "until decided"] / ratios["like the demo", "fixed"]
    print(f"RATIO seed runs until decided / fixed, like the demo: {ratio:.2f}x  (target <= 0.6)")


if __name__ == "__main__":
    main()
