"""A trial as one DDP job: the sweep starts the ranks itself, only rank 0 talks to Optuna and broadcasts
each trial's overrides, and every rank checks it trains the very same config (optuna#4835).

The ranks meet through a file the launcher names (``file://`` rendezvous: no port to pick, so no race for
one). On GPUs the process group carries NCCL for CUDA tensors (the gradients) and gloo for CPU objects (the
broadcast overrides): ``cpu:gloo,cuda:nccl``; Lightning finds the group ready and uses it. When a rank
dies, the launcher writes why to the group's failure file and stops the other ranks: rank 0 records the
trial FAILED with that reason instead of waiting out a collective's timeout.
"""

from __future__ import annotations

import hashlib
import logging
import os
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

from ..config import to_yaml

log = logging.getLogger(__name__)


def broadcast(payload: Any) -> Any:
    import torch.distributed as dist

    box = [payload]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def check_ranks_agree(cfg) -> None:
    """Under DDP: every rank must train the very same config (the failure optuna#4835 describes)."""
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()):
        return
    digest = hashlib.sha256(to_yaml(cfg).encode()).hexdigest()[:16]
    digests: list[str | None] = [None] * dist.get_world_size()
    dist.all_gather_object(digests, digest)
    if len(set(digests)) != 1:
        raise RuntimeError(f"DDP ranks would train different configs: {digests}")
    log.info("all %d ranks train config %s", len(digests), digest)


RENDEZVOUS_ENV = "LIGHTNING_ATTN_RENDEZVOUS"  # the file the ranks of one group meet through
FAILURE_ENV = "LIGHTNING_ATTN_RANK_FAILURE"  # the file the launcher writes when a rank of the group died


def process_group_backend(cuda: bool) -> str:
    """NCCL for CUDA tensors beside gloo for CPU ones on GPUs; gloo alone on CPUs."""
    return "cpu:gloo,cuda:nccl" if cuda else "gloo"


def init_ddp(cuda: bool) -> int:
    """Join the group the launcher started (``RANK``, ``WORLD_SIZE``, the rendezvous file); this rank."""
    import torch
    import torch.distributed as dist

    rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    if cuda:
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", rank)))
    # a collective with a dead peer fails fast on a closed connection; the timeout is the last resort
    dist.init_process_group(
        process_group_backend(cuda),
        init_method=f"file://{os.environ[RENDEZVOUS_ENV]}",
        rank=rank,
        world_size=world,
        timeout=timedelta(minutes=10),
    )
    return rank


def dead_rank_reason(wait_s: float = 0.0) -> str | None:
    """Why this group's trial ended, when a rank of it died (the launcher's note); None otherwise. A
    collective can notice the dead peer before the launcher does: ``wait_s`` gives the note time to come."""
    path = os.environ.get(FAILURE_ENV)
    if not path:
        return None
    deadline = time.monotonic() + wait_s
    while True:
        if Path(path).is_file():
            return Path(path).read_text(encoding="utf-8").strip() or None
        if time.monotonic() >= deadline:
            return None
        time.sleep(0.2)
