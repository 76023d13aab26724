"""Speed, measured the same way for every mechanism: training throughput (:class:`SpeedMonitor`) and
inference latency (:func:`inference_latency`).

Inference: greedy decoding latency at batch 1 and batch B.
A dedicated pass after testing, on test examples: warm-up calls first (not timed), then each call
timed on its own under ``torch.inference_mode`` in eval mode; on a GPU the clock waits for the
device (``torch.cuda.synchronize``). Metric names carry their units:
``speed/infer_latency_ms_p50_b1``, ``..._p95_b1``, ``..._p50_b<B>``, ``..._p95_b<B>``.
"""

from __future__ import annotations

import itertools
import resource
import sys
import time

import lightning as L
import numpy as np
import torch
from lightning.pytorch.callbacks import Callback
from torch.utils.data import DataLoader

from ..data.codec import PAD


def _timed(module, batch, device) -> float:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    start = time.perf_counter()
    module.decode(batch, 1)  # greedy: the decoding every mechanism shares
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return (time.perf_counter() - start) * 1000


def inference_latency(module, examples: list, collate, batch_size: int, n_single: int = 20, n_batches: int = 5,
                      warmup: int = 2) -> dict[str, float]:  # fmt: skip
    """Milliseconds per greedy ``decode`` call, p50/p95, at batch 1 and at ``batch_size``."""
    device = module.device
    was_training = module.training
    module.eval()
    results: dict[str, float] = {}
    try:
        with torch.inference_mode():
            for size, calls in ((1, n_single), (batch_size, n_batches)):
                if calls <= 0 or len(examples) < size:
                    continue
                loader = DataLoader(examples, batch_size=size, shuffle=False, collate_fn=collate, drop_last=True)
                batches = list(itertools.islice(loader, warmup + calls))  # a small test split is cycled
                times = []
                for i in range(warmup + calls):
                    batch = module.transfer_batch_to_device(batches[i % len(batches)], device, 0)
                    elapsed = _timed(module, batch, device)
                    if i >= warmup:
                        times.append(elapsed)
                if times:
                    results[f"speed/infer_latency_ms_p50_b{size}"] = float(np.percentile(times, 50))
                    results[f"speed/infer_latency_ms_p95_b{size}"] = float(np.percentile(times, 95))
    finally:
        module.train(was_training)
    return results


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far (Linux reports KiB, macOS bytes)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 1024 / (1024 if sys.platform == "darwin" else 1)


class SpeedMonitor(Callback):
    """Per epoch: training throughput and step times, peak memory.

    A step is timed from ``on_train_batch_start`` to ``on_train_batch_end`` (forward, backward,
    optimiser; data loading excluded; on a GPU the clock waits for the device). Logged as
    ``speed/train_samples_per_s``, ``speed/train_tokens_per_s`` (target tokens),
    ``speed/step_time_ms_p50|p95``, ``speed/peak_rss_mb`` and, on a GPU, ``speed/cuda_max_memory_mb``.
    """

    def __init__(self):
        self.times: list[float] = []
        self.samples = 0
        self.tokens = 0
        self._start = 0.0

    def _sync(self, pl_module: L.LightningModule) -> None:
        if pl_module.device.type == "cuda":
            torch.cuda.synchronize(pl_module.device)

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.times, self.samples, self.tokens = [], 0, 0

    def on_train_batch_start(self, trainer: L.Trainer, pl_module: L.LightningModule, batch, batch_idx) -> None:
        self._sync(pl_module)
        self._start = time.perf_counter()

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, outputs, batch, batch_idx) -> None:
        self._sync(pl_module)
        self.times.append(time.perf_counter() - self._start)
        self.samples += len(batch)
        self.tokens += int((batch.tgt_out != PAD).sum())

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not self.times:
            return
        total = sum(self.times)
        metrics = {
            "speed/train_samples_per_s": self.samples / total,
            "speed/train_tokens_per_s": self.tokens / total,
            "speed/step_time_ms_p50": float(np.percentile(self.times, 50)) * 1000,
            "speed/step_time_ms_p95": float(np.percentile(self.times, 95)) * 1000,
            "speed/peak_rss_mb": peak_rss_mb(),
        }
        if pl_module.device.type == "cuda":
            metrics["speed/cuda_max_memory_mb"] = torch.cuda.max_memory_allocated(pl_module.device) / 2**20
        for name, value in metrics.items():
            pl_module.log(name, value, on_epoch=True, rank_zero_only=True)
