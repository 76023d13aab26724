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
import threading
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


def inference_latency(
    module, examples: list, collate, *, batch_size: int, n_single: int, n_batches: int, warmup: int
) -> dict[str, float]:
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


def lifetime_peak_rss_mb() -> float:
    """Peak resident memory of this process since it started (Linux reports KiB, macOS bytes)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 1024 / (1024 if sys.platform == "darwin" else 1)


def _proc_status_mb(field: str) -> float | None:
    """A ``/proc/self/status`` memory field (``VmRSS``, ``VmHWM``) in MiB; ``None`` off Linux."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


class RunMemory:
    """Resident memory of this process from :meth:`start` on, so a run's figures are its own.

    A sweep worker trains many runs in one process: the process's lifetime peak would be whichever
    earlier run peaked highest. On Linux the kernel's peak (``VmHWM``) is reset at the start by writing
    ``5`` to ``/proc/self/clear_refs``; where that is refused, a thread samples the resident size every
    20 ms instead; elsewhere (no ``/proc``) only the lifetime peak exists, and ``scope`` says so.
    """

    def __init__(self):
        self.start_mb = 0.0
        self.scope = "process"  # run: the figures belong to this run alone
        self._sampled = 0.0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self.stop()
        current = _proc_status_mb("VmRSS")
        if current is None:  # no /proc: the lifetime peak is all there is
            self.start_mb, self.scope = 0.0, "process"
            return
        self.start_mb, self.scope = current, "run"
        try:
            with open("/proc/self/clear_refs", "w", encoding="ascii") as f:
                f.write("5")  # reset the peak resident set size to the current one
        except OSError:
            self._sampled = current
            self._stop.clear()
            self._thread = threading.Thread(target=self._sample, name="rss-sampler", daemon=True)
            self._thread.start()

    def _sample(self) -> None:
        while not self._stop.wait(0.02):
            self._sampled = max(self._sampled, _proc_status_mb("VmRSS") or 0.0)

    def peak_mb(self) -> float:
        if self.scope != "run":
            return lifetime_peak_rss_mb()
        if self._thread is not None:
            return max(self._sampled, _proc_status_mb("VmRSS") or 0.0)
        return _proc_status_mb("VmHWM") or lifetime_peak_rss_mb()

    def growth_mb(self) -> float:
        """Peak above the resident size at the start: what this run added, whatever came before it."""
        return max(0.0, self.peak_mb() - self.start_mb)

    def stop(self) -> None:
        if self._thread is not None:
            self._stop.set()
            self._thread.join(timeout=1)
            self._thread = None


class SpeedMonitor(Callback):
    """Per epoch: training throughput and step times, the run's memory.

    A step is timed from ``on_train_batch_start`` to ``on_train_batch_end`` (forward, backward,
    optimiser; data loading excluded; on a GPU the clock waits for the device). Logged as
    ``speed/train_samples_per_s``, ``speed/train_tokens_per_s`` (target tokens; under DDP the whole
    job's: every rank's samples over the slowest rank's time), ``speed/step_time_ms_p50|p95`` (rank 0),
    ``speed/epoch_time_s`` (the epoch's training, wall clock, data loading included; rank 0),
    ``speed/peak_rss_mb`` (this run's peak, see :class:`RunMemory`), ``speed/rss_growth_mb`` (that peak
    above the resident size when the run started) and, on a GPU, ``speed/cuda_max_memory_mb`` (peak
    statistics reset when the run starts).
    """

    def __init__(self):
        self.times: list[float] = []
        self.samples = 0
        self.tokens = 0
        self._start = 0.0
        self._epoch_start = 0.0
        self.memory = RunMemory()

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # a worker trains many runs in one process: each run's peaks start from here
        self.memory.start()
        if pl_module.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(pl_module.device)

    def on_fit_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.memory.stop()

    def on_exception(self, trainer: L.Trainer, pl_module: L.LightningModule, exception: BaseException) -> None:
        self.memory.stop()

    def _sync(self, pl_module: L.LightningModule) -> None:
        if pl_module.device.type == "cuda":
            torch.cuda.synchronize(pl_module.device)

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.times, self.samples, self.tokens = [], 0, 0
        self._epoch_start = time.perf_counter()

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
        samples, tokens, total = float(self.samples), float(self.tokens), sum(self.times)
        if trainer.world_size > 1:
            # the job's throughput: every rank's samples, over the time of the slowest rank
            mine = torch.tensor([samples, tokens, total], dtype=torch.float64, device=pl_module.device)
            gathered = trainer.strategy.all_gather(mine).reshape(-1, 3)
            samples, tokens = float(gathered[:, 0].sum()), float(gathered[:, 1].sum())
            total = float(gathered[:, 2].max())
        metrics = {
            "speed/epoch_time_s": time.perf_counter() - self._epoch_start,  # the training part, data loading included
            "speed/train_samples": samples,  # this epoch's, every rank's: the job's throughput counts them all
            "speed/train_samples_per_s": samples / total,
            "speed/train_tokens_per_s": tokens / total,
            "speed/step_time_ms_p50": float(np.percentile(self.times, 50)) * 1000,
            "speed/step_time_ms_p95": float(np.percentile(self.times, 95)) * 1000,
            "speed/peak_rss_mb": self.memory.peak_mb(),
            "speed/rss_growth_mb": self.memory.growth_mb(),
        }
        if pl_module.device.type == "cuda":
            metrics["speed/cuda_max_memory_mb"] = torch.cuda.max_memory_allocated(pl_module.device) / 2**20
        for name, value in metrics.items():
            pl_module.log(name, value, on_epoch=True, rank_zero_only=True)
