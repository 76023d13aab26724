"""Training throughput on real text (Multi30k, the ``multi30k_de_en`` preset's model and batches).

Three measurements, side by side in one run:

1. **padding**: the share of every padded batch tensor that is padding, for ``batch_size`` random
   batches against the preset's length-bucketed token batches (``data.batch_tokens``);
2. **the training loop against a plain PyTorch loop** over the very same model, batches, loss,
   clipping and optimiser (``benchmarks/overhead.py``'s two loops): the project's Trainer with every
   callback a run has and its MLflow logger, validation off. Alternated and repeated; the best of each;
3. **threads and batching**: target tokens per second of the plain loop with 1 and with all cores, and
   with random batches of the same number of sentences instead of bucketed ones.

It ends with the time one epoch takes at that speed. Ratio line: project / plain (target <= 1.05).

    python benchmarks/multi30k_throughput.py --root ../shared/data/multi30k
"""

from __future__ import annotations

import argparse
import os
import random
import tempfile
from pathlib import Path

import torch
from overhead import plain, project

from lightning_attn.config import compose
from lightning_attn.console import quiet_third_party
from lightning_attn.data.batching import padding_share
from lightning_attn.data.codec import PAD
from lightning_attn.train import build_task

DEFAULT_ROOT = Path(__file__).resolve().parents[2] / "shared" / "data" / "multi30k"


def config(root: Path, experiment: str, folder: Path, threads: int):
    return compose(
        [
            f"experiment={experiment}",
            f"data.root={root}",
            f"threads={threads}",
            "trainer.max_epochs=1",
            "trainer.limit_val_batches=0",
            "trainer.enable_progress_bar=false",
            "trainer.enable_checkpointing=false",
            "trainer.enable_model_summary=false",
            f"logger.tracking_uri=sqlite:///{folder / 'mlflow.db'}",
            f"output_dir={folder / 'outputs'}",
        ]
    )


def tokens(batches) -> int:
    return sum(int((b.tgt_out != PAD).sum()) for b in batches)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", type=Path, default=Path(os.environ.get("MULTI30K", DEFAULT_ROOT)))
    parser.add_argument("--experiment", default="multi30k_de_en")
    parser.add_argument("--steps", type=int, default=20, help="training steps per measurement")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    quiet_third_party()
    cores = os.cpu_count() or 1
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        cfg = config(args.root, args.experiment, folder, cores)
        torch.set_num_threads(cores)
        data, _ = build_task(cfg)
        train, lengths = data.splits["train"], data.lengths("train")
        plan = data.batch_plan("train")
        sentences = round(len(train) / len(plan))
        shuffled = list(range(len(train)))
        random.Random(0).shuffle(shuffled)
        random_plan = [shuffled[i : i + sentences] for i in range(0, len(shuffled), sentences)]
        print(
            f"multi30k ({args.experiment}): {len(train)} training pairs, batch_tokens={cfg.data.batch_tokens}: "
            f"{len(plan)} batches of {sentences} pairs on average"
        )
        print(
            f"  padding share: random batches of {sentences} {padding_share(lengths, random_plan):.1%}, "
            f"bucketed token batches {padding_share(lengths, plan):.1%}"
        )

        # the same batches for every variant: a random sample of the epoch's bucketed batches
        picked = random.Random(1).sample(range(len(plan)), args.steps)
        batches = [data.collate([train[i] for i in plan[b]]) for b in picked]
        same_sentences = [i for b in picked for i in plan[b]]
        random.Random(2).shuffle(same_sentences)
        unbucketed = [
            data.collate([train[i] for i in same_sentences[k : k + sentences]])
            for k in range(0, len(same_sentences), sentences)
        ]

        times: dict[str, list[float]] = {"plain": [], "project": []}
        for repeat in range(args.repeats):
            for name in times:
                torch.manual_seed(repeat)
                _, module = build_task(cfg)
                if name == "plain":
                    times[name].append(plain(module, batches))
                else:
                    times[name].append(project(cfg, module, batches, folder))
        best = {name: min(t) for name, t in times.items()}
        n_tokens = tokens(batches)
        print(f"training loop: {args.steps} steps, {n_tokens} target tokens, best of {args.repeats}, {cores} threads")
        for name, t in best.items():
            print(
                f"  {name:<10} {t:7.2f} s  {n_tokens / t:8.0f} tokens/s  (all runs: "
                f"{', '.join(f'{x:.2f}' for x in times[name])})"
            )

        print("plain loop, target tokens/s:")
        for label, threads, variant in (
            ("1 thread, bucketed", 1, batches),
            (f"{cores} threads, bucketed", cores, batches),
            (f"{cores} threads, random batches", cores, unbucketed),
        ):
            torch.set_num_threads(threads)
            torch.manual_seed(0)
            _, module = build_task(cfg)
            elapsed = plain(module, variant)
            print(f"  {label:<28} {tokens(variant) / elapsed:8.0f}")
        torch.set_num_threads(cores)
        epoch_tokens = sum(len(p.tgt) + 1 for p in train)
        epoch_s = epoch_tokens / (n_tokens / best["project"])
        print(f"one epoch ({epoch_tokens} target tokens) at the project's speed: {epoch_s / 60:.1f} min")
        print(f"RATIO multi30k training (project / plain): {best['project'] / best['plain']:.3f}x  (target <= 1.05)")


if __name__ == "__main__":
    main()
