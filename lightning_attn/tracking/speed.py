"""Inference speed: greedy decoding latency at batch 1 and batch B, measured the same way for every mechanism.

A dedicated pass after testing, on test examples: warm-up calls first (not timed), then each call
timed on its own under ``torch.inference_mode`` in eval mode; on a GPU the clock waits for the
device (``torch.cuda.synchronize``). Metric names carry their units:
``speed/infer_latency_ms_p50_b1``, ``..._p95_b1``, ``..._p50_b<B>``, ``..._p95_b<B>``.
"""

from __future__ import annotations

import time

import numpy as np
import torch
from torch.utils.data import DataLoader


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
                times = []
                for i, batch in enumerate(loader):
                    if i >= warmup + calls:
                        break
                    batch = module.transfer_batch_to_device(batch, device, 0)
                    elapsed = _timed(module, batch, device)
                    if i >= warmup:
                        times.append(elapsed)
                if times:
                    results[f"speed/infer_latency_ms_p50_b{size}"] = float(np.percentile(times, 50))
                    results[f"speed/infer_latency_ms_p95_b{size}"] = float(np.percentile(times, 95))
    finally:
        module.train(was_training)
    return results
