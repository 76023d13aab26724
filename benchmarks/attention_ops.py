"""The attention step of every mechanism at N = 16 … 4096 positions (batch 32, D = 256).

What a decoder pays per step: the keys are prepared once per sequence (``Attention.prepare``, not
timed), then ``attend(query, prepared, values, mask)`` is timed — scoring, normalising and reading the
context. Three measurements, side by side in one run:

1. **inference** (eval mode, ``torch.inference_mode``): every registered mechanism with its default
   (additive) scorer, and soft/hard with the cheap ``dot`` scorer too. Hard attention takes an argmax
   and a gather but still scores every position; local attention scores and reads only its window.
2. **training step** (train mode, forward and backward of the context): the softmax against the sparse
   normalisers (sparsemax, 1.5-entmax), ``dot`` scorer, so that the normaliser is what is compared.
3. hard vs soft with values much wider than the keys (2048-d, as CNN features can be): there the
   weighted sum hard attention skips is most of the step.

Ratio lines: sparse training step speed / softmax's (target >= 0.5x); local vs soft inference at
N = 4096 (target >= 5x) and local's growth from N = 16 to 4096 (flat: about 1x); soft / hard latency at
N >= 256 (target >= 1.5x).
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from lightning_attn.attention import MECHANISMS, build_attention

SIZES = (16, 64, 256, 1024, 4096)


def median_ms(step, repeats: int) -> float:
    for _ in range(3):  # warm-up
        step()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


def row(label: str, values: list[float]) -> str:
    return f"  {label:<20}" + "".join(f"{t:10.3f}" for t in values)


def inference(config: dict, B: int, D: int, repeats: int, value_dim: int | None = None) -> list[float]:
    attention = build_attention(config, query_dim=D, key_dim=D).eval()
    out = []
    with torch.inference_mode():
        for n in SIZES:
            keys, query = torch.randn(B, n, D), torch.randn(B, D)
            values = torch.randn(B, n, value_dim) if value_dim else keys
            mask = torch.ones(B, n, dtype=torch.bool)
            prepared = attention.prepare(keys)
            out.append(
                median_ms(lambda a=attention, q=query, p=prepared, v=values, m=mask: a.attend(q, p, v, m), repeats)
            )
    return out


def training_step(config: dict, B: int, D: int, repeats: int) -> list[float]:
    attention = build_attention(config, query_dim=D, key_dim=D).train()
    out = []
    for n in SIZES:
        keys, query = torch.randn(B, n, D, requires_grad=True), torch.randn(B, D, requires_grad=True)
        mask = torch.ones(B, n, dtype=torch.bool)
        weight = torch.randn(B, D)

        def step(a=attention, q=query, k=keys, m=mask, w=weight):
            (a(q, k, k, m).context * w).sum().backward()

        out.append(median_ms(step, repeats))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--dim", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args()
    torch.manual_seed(0)
    B, D, R = args.batch, args.dim, args.repeats
    header = f"  {'':<20}" + "".join(f"{'N=' + str(n):>10}" for n in SIZES)
    print(f"attention ops: median ms per attend() call, batch {B}, D {D}, {torch.get_num_threads()} threads")
    print("1. inference (eval mode, default scorer: additive)")
    print(header)
    infer: dict[str, list[float]] = {}
    for name in sorted(MECHANISMS):
        infer[name] = inference({"mechanism": name}, B, D, R)
        print(row(name, infer[name]))
    for name in ("soft", "hard"):
        infer[f"{name} (dot)"] = inference({"mechanism": name, "score": "dot"}, B, D, R)
        print(row(f"{name} (dot)", infer[f"{name} (dot)"]))
    print("2. training step (forward + backward, dot scorer)")
    print(header)
    train: dict[str, list[float]] = {}
    for name in ("soft", "sparsemax", "entmax15"):
        train[name] = training_step({"mechanism": name, "score": "dot"}, B, D, R)
        print(row(name, train[name]))
    wide = 2048
    print(f"3. inference with {wide}-d values (scored through the additive scorer's {D}-d keys)")
    print(header)
    for name in ("hard", "soft"):
        infer[f"{name} (wide)"] = inference({"mechanism": name}, B, D, R, value_dim=wide)
        print(row(name, infer[f"{name} (wide)"]))

    big = [i for i, n in enumerate(SIZES) if n >= 256]
    speeds = {
        name: min(train["soft"][i] / train[name][i] for i in range(len(SIZES))) for name in ("sparsemax", "entmax15")
    }
    print(
        "RATIO sparse training step speed vs softmax (softmax time / its time, worst N): "
        + ", ".join(f"{k} {v:.2f}x" for k, v in speeds.items())
        + "  (target >= 0.5x)"
    )
    local_vs_soft = infer["soft"][-1] / infer["local"][-1]
    growth = infer["local"][-1] / infer["local"][0]
    print(
        f"RATIO local vs soft inference at N = {SIZES[-1]}: {local_vs_soft:.1f}x faster (target >= 5x); "
        f"local from N = {SIZES[0]} to {SIZES[-1]}: {growth:.2f}x the time (flat: ~1x)"
    )

    def worst(key: str) -> float:
        return min(infer[f"soft{key}"][i] / infer[f"hard{key}"][i] for i in big)

    print(
        f"RATIO hard vs soft inference (soft / hard latency, N >= 256): dot >= {worst(' (dot)'):.2f}x, "
        f"additive >= {worst(''):.2f}x; with {wide}-d values >= {worst(' (wide)'):.2f}x  (target >= 1.5x)"
    )


if __name__ == "__main__":
    main()
