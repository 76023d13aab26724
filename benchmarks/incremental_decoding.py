"""Incremental decoding of the Transformer: the cost of a decoded token at 10 and at 100 output tokens.

The ``multi30k_de_en_transformer`` preset's model (width 256, 3 + 3 layers, 8 heads, 8,000 words each side;
random weights: the cost does not depend on them), one 20-token source sentence, greedy decoding with
``</s>`` forbidden so that every call runs exactly its number of steps (the speed pass's fixed work). Two
ways, each at 10 and at 100 tokens, alternated and repeated, the median of each:

1. **incremental**, as the model decodes: each step runs the new position only, its self-attention reading
   the cached keys and values of the earlier ones;
2. **recomputed**: each step runs the whole prefix again through the teacher-forced pass (what decoding
   without a cache costs), the last position's logits taken.

Per token, incremental decoding grows only by the attention over a longer cache (linear in the prefix, small
beside the projections and the output layer); recomputation grows with the prefix. Ratio line: incremental
per-token time at 100 tokens over at 10 (target <= 1.5x).

    python benchmarks/incremental_decoding.py
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from lightning_attn.config import compose
from lightning_attn.config.compose import section
from lightning_attn.data.codec import BOS
from lightning_attn.models import greedy
from lightning_attn.speedpass.workloads import never_ends
from lightning_attn.tasks import TASKS

LENGTHS = (10, 100)


def incremental(model, src, lengths, steps: int) -> None:
    greedy(never_ends(model.decoder.step), model.encode(src, lengths), 1, steps, src.device)


def recomputed(model, src, lengths, steps: int) -> None:
    state = model.encode(src, lengths)
    prefix = torch.full((1, 1), BOS)
    for _ in range(steps):
        logits = model.decoder.teacher_forced(state, prefix).logits[:, -1]
        prefix = torch.cat([prefix, logits.argmax(-1, keepdim=True)], dim=1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    cfg = compose(["experiment=multi30k_de_en_transformer", "data.root=unused"])
    torch.manual_seed(0)
    model = TASKS["translation"].bare_model(section(cfg, "model"), section(cfg, "attention"), 8000).eval()
    src, lengths = torch.randint(4, 8000, (1, 20)), torch.tensor([20])
    ways = {"incremental": incremental, "recomputed": recomputed}
    times: dict[tuple[str, int], list[float]] = {(w, n): [] for w in ways for n in LENGTHS}
    with torch.inference_mode():
        for _ in range(2):  # warm-up
            for way in ways.values():
                way(model, src, lengths, 10)
        for _ in range(args.repeats):
            for (name, n), found in times.items():
                start = time.perf_counter()
                ways[name](model, src, lengths, n)
                found.append((time.perf_counter() - start) / n)
    per_token = {key: statistics.median(found) * 1000 for key, found in times.items()}
    params = sum(p.numel() for p in model.parameters())
    print(f"transformer ({params / 1e6:.1f} M parameters), one 20-token source, {args.threads} thread(s), ms/token:")
    print(f"  {'tokens':>8} {'incremental':>12} {'recomputed':>12}")
    for n in LENGTHS:
        print(f"  {n:>8} {per_token['incremental', n]:12.2f} {per_token['recomputed', n]:12.2f}")
    growth = per_token["incremental", 100] / per_token["incremental", 10]
    again = per_token["recomputed", 100] / per_token["recomputed", 10]
    print(f"  recomputation's growth from 10 to 100 tokens: {again:.2f}x")
    print(f"RATIO incremental decoding, per-token time at 100 / at 10 tokens: {growth:.2f}x  (target <= 1.5x)")


if __name__ == "__main__":
    main()
