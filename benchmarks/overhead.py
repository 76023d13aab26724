"""Overhead of the project's training step against a plain PyTorch loop, over the same model and batches.

Three ways through the same batches, one epoch each, alternated and repeated (the best of each is kept,
which is what a timing on a shared machine can trust):

* plain: ``for batch: zero_grad; loss = NLL(model(batch)); backward; clip; step`` — no Lightning;
* project: ``lightning_attn.train.build_trainer`` (the Trainer every run uses: divergence guard,
  stability and speed monitors) with its MLflow logger, ``trainer.fit`` — validation off;
* uninstrumented: the same with ``stability.monitor=false speed.monitor=false``.

Ratio lines: project / plain (target <= 1.05) and project / uninstrumented (target <= 1.03).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader

from lightning_attn.config import compose
from lightning_attn.console import quiet_third_party
from lightning_attn.data.codec import PAD
from lightning_attn.train import build_task, build_trainer


def run_config(steps: int, instrumented: bool, folder: Path):
    return compose(
        [
            f"data.n_train={steps * 64}",
            "data.n_val=64",
            "data.n_test=64",
            "data.batch_size=64",
            "trainer.max_epochs=1",
            "trainer.limit_val_batches=0",
            "trainer.enable_progress_bar=false",
            "trainer.enable_checkpointing=false",
            "trainer.enable_model_summary=false",
            "trainer.log_every_n_steps=50",
            f"stability.monitor={instrumented}",
            f"speed.monitor={instrumented}",
            f"logger.tracking_uri=sqlite:///{folder / 'mlflow.db'}",
            f"output_dir={folder / 'outputs'}",
        ]
    )


def plain(module, batches) -> float:
    """The same model, loss, clipping and optimiser, without Lightning."""
    model = module.model
    smoothing = module.cfg["label_smoothing"]  # the preset's loss (Multi30k's: 0.1)
    optimizer = torch.optim.Adam(model.parameters(), lr=module.cfg["lr"])
    model.train()
    start = time.perf_counter()
    for batch in batches:
        optimizer.zero_grad()
        out = model(batch.src, batch.src_lengths, batch.tgt_in)
        loss = F.cross_entropy(out.logits.transpose(1, 2), batch.tgt_out, ignore_index=PAD, label_smoothing=smoothing)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
    return time.perf_counter() - start


def project(cfg, module, batches, folder: Path) -> float:
    """The Trainer every run uses (callbacks, MLflow logger) over ``batches`` (a list or a DataLoader)."""
    from lightning.pytorch.loggers import MLFlowLogger

    logger = MLFlowLogger(experiment_name="overhead", tracking_uri=cfg.logger.tracking_uri)
    trainer = build_trainer(cfg, logger)
    loader = DataLoader(batches, batch_size=None, shuffle=False)
    start = time.perf_counter()
    trainer.fit(module, train_dataloaders=loader)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=100, help="training steps per measurement")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    quiet_third_party()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        cfg_on, cfg_off = run_config(args.steps, True, folder), run_config(args.steps, False, folder)
        data, _ = build_task(cfg_on)
        batches = list(data.train_dataloader())  # the very same batches for every variant
        times: dict[str, list[float]] = {"plain": [], "project": [], "uninstrumented": []}
        for repeat in range(args.repeats):
            for name in times:
                torch.manual_seed(repeat)
                _, module = build_task(cfg_on)  # a fresh model each time, same initialisation
                if name == "plain":
                    times[name].append(plain(module, batches))
                else:
                    times[name].append(project(cfg_on if name == "project" else cfg_off, module, batches, folder))
        best = {name: min(t) for name, t in times.items()}
        print(f"overhead: {len(batches)} steps of batch 64 (translation, default model), best of {args.repeats}")
        for name, t in best.items():
            runs = ", ".join(f"{x:.2f}" for x in times[name])
            print(f"  {name:<15} {t:7.2f} s  ({1000 * t / len(batches):6.1f} ms/step; all runs: {runs})")
        print(f"RATIO overhead (project / plain): {best['project'] / best['plain']:.3f}x  (target <= 1.05)")
        print(f"RATIO instrumentation (on / off): {best['project'] / best['uninstrumented']:.3f}x  (target <= 1.03)")


if __name__ == "__main__":
    main()
