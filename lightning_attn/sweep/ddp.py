"""A trial as one DDP job: the sweep starts the ranks itself, only rank 0 talks to Optuna and broadcasts
each trial's overrides, and every rank checks it trains the very same config (optuna#4835)."""

from __future__ import annotations

import hashlib
import logging
from datetime import timedelta
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


def init_ddp() -> int:
    import torch.distributed as dist

    # a rank that dies leaves the others in a collective; give up after a while instead of forever
    dist.init_process_group("gloo", timeout=timedelta(minutes=10))
    return dist.get_rank()
