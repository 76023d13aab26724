"""Memory that belongs to the model: the peak of the tensors one call allocates, above what was live before it.

On a GPU, ``torch.cuda.max_memory_allocated`` (peak statistics reset first). On a CPU, the profiler's allocation
tracking (``torch.profiler.profile(profile_memory=True)``): every tensor allocation and release in the call, in
order, summed — the interpreter, the libraries and the allocator's caches are not counted, so the figure shows
what a mechanism's tensors take (a process's resident size cannot: it is the runtime's ~700 MiB).
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Callable

MIB = 2**20


def peak_tensor_mib(call: Callable[[], object], device: str = "cpu") -> float:
    """Peak MiB of tensors allocated by ``call()`` on ``device`` and not yet freed, above those live before it."""
    import torch

    if torch.device(device).type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        before = torch.cuda.memory_allocated(device)
        call()
        torch.cuda.synchronize(device)
        return (torch.cuda.max_memory_allocated(device) - before) / MIB
    from torch.autograd import DeviceType
    from torch.profiler import ProfilerActivity, profile

    prof = profile(activities=[ProfilerActivity.CPU], profile_memory=True)
    with _quiet_stderr():  # the profiler's C++ side prints a line as it starts and one as it stops
        prof.start()
    try:
        call()
    finally:
        with _quiet_stderr():
            prof.stop()
    events = [
        e for e in prof.profiler.kineto_results.events() if e.name() == "[memory]" and e.device_type() == DeviceType.CPU
    ]
    live = peak = 0
    for event in sorted(events, key=lambda e: e.start_ns()):
        live += event.nbytes()  # negative for a release
        peak = max(peak, live)
    return peak / MIB


@contextlib.contextmanager
def _quiet_stderr():
    """File descriptor 2 to /dev/null for a moment (what C++ code prints there), then back."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
