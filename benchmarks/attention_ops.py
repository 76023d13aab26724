"""Forward latency of every attention mechanism at N = 16 … 4096 positions (batch 32, D = 256, eval mode).

What a decoder pays per step: the keys are prepared once per sequence (``Attention.prepare``, not
timed), then ``attend(query, prepared, values, mask)`` is timed — scoring, normalising and reading
the context. Hard attention at evaluation takes the argmax and gathers one row; soft attention
takes a softmax and a weighted sum over all N rows. Both score every position, so how much hard
saves depends on how much of the step the scorer costs: reported for the ``dot`` scorer (cheap,
O(N·D)) and the default ``additive`` scorer (O(N·H) plus a tanh).

A last pair uses values much wider than the keys (2048-d, as CNN features can be): there the
weighted sum hard attention skips is most of the step.

Ratio line: soft / hard latency at N >= 256 (target >= 1.5x).
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from lightning_attn.attention import MECHANISMS, build_attention

SIZES = (16, 64, 256, 1024, 4096)


def latency_ms(attention, query, prepared, values, mask, repeats: int) -> float:
    for _ in range(3):  # warm-up
        attention.attend(query, prepared, values, mask)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        attention.attend(query, prepared, values, mask)
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--dim", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=30)
    args = parser.parse_args()
    torch.manual_seed(0)
    B, D = args.batch, args.dim
    print(f"attention ops: median ms per attend() call, batch {B}, D {D}, eval mode, {torch.get_num_threads()} threads")
    variants = [(m, s) for m in sorted(MECHANISMS) for s in (("dot", "additive") if m != "uniform" else (None,))]
    header = f"  {'mechanism':<18}" + "".join(f"{'N=' + str(n):>10}" for n in SIZES)
    print(header)
    results: dict[tuple[str, str | None], list[float]] = {}
    with torch.inference_mode():
        for mechanism, score in variants:
            cfg = {"mechanism": mechanism} | ({"score": score} if score else {})
            attention = build_attention(cfg, query_dim=D, key_dim=D).eval()
            row = []
            for n in SIZES:
                keys = torch.randn(B, n, D)
                mask = torch.ones(B, n, dtype=torch.bool)
                query = torch.randn(B, D)
                row.append(latency_ms(attention, query, attention.prepare(keys), keys, mask, args.repeats))
            results[(mechanism, score)] = row
            label = mechanism + (f" ({score})" if score else "")
            print(f"  {label:<18}" + "".join(f"{t:10.3f}" for t in row))
    # where hard attention does pay off: values much wider than what is scored (e.g. 2048-d CNN
    # features scored through a small projection) make the skipped weighted sum the dominant cost
    wide = 2048
    print(f"  with {wide}-d values (scored through the additive scorer's {D}-d keys):")
    with torch.inference_mode():
        for mechanism in ("hard", "soft"):
            attention = build_attention({"mechanism": mechanism}, query_dim=D, key_dim=D).eval()
            row = []
            for n in SIZES:
                keys, values = torch.randn(B, n, D), torch.randn(B, n, wide)
                mask = torch.ones(B, n, dtype=torch.bool)
                row.append(
                    latency_ms(attention, torch.randn(B, D), attention.prepare(keys), values, mask, args.repeats)
                )
            results[(mechanism, "wide")] = row
            print(f"  {mechanism + ' (additive)':<18}" + "".join(f"{t:10.3f}" for t in row))
    big = [i for i, n in enumerate(SIZES) if n >= 256]
    for score in ("dot", "additive", "wide"):
        ratios = [results[("soft", score)][i] / results[("hard", score)][i] for i in big]
        print(f"  soft/hard ({score}) at N>=256: " + ", ".join(f"{r:.2f}x" for r in ratios))

    def worst(score: str) -> float:
        return min(results[("soft", score)][i] / results[("hard", score)][i] for i in big)

    print(
        f"RATIO hard vs soft inference (soft / hard latency, N >= 256, D = {D}): dot >= {worst('dot'):.2f}x, "
        f"additive >= {worst('additive'):.2f}x; with {wide}-d values >= {worst('wide'):.2f}x  (target >= 1.5x)"
    )


if __name__ == "__main__":
    main()
