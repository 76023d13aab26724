"""The trial objective: one trial's run config, trained, its objective values checked."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import optuna

from ..config import compose
from ..tracking.lifecycle import Resumption
from . import spec as sweep_spec
from .ddp import check_ranks_agree
from .samplers import PruningCallback, prune_metric
from .spec import SweepSpec


class ObjectiveError(RuntimeError):
    """The run finished but its objective value is missing or not a number."""


def trial_overrides(
    spec: SweepSpec,
    mechanism: str,
    params: dict[str, Any],
    *,
    seed: int,
    tracking_uri: str,
    output_dir: Path,
    device_overrides: list[str],
) -> list[str]:
    """Every run-config override of one trial: the sweep's, the sampled parameters, where it logs and writes,
    and the device the worker runs on."""
    return [
        *sweep_spec.run_overrides(spec, mechanism, params, seed),
        f"logger.tracking_uri={tracking_uri}",
        f"logger.experiment_name={sweep_spec.experiment_name(spec)}",
        f"output_dir={output_dir}",
        "trainer.enable_progress_bar=false",  # the launcher shows sweep-level progress
        "trainer.enable_model_summary=false",
        *device_overrides,
    ]


def train_trial(
    spec: SweepSpec,
    overrides: list[str],
    trial: optuna.Trial | None,
    run_id: str | None,
    resumption: Resumption | None = None,
):
    """Train one trial's config — from ``resumption``'s checkpoint where it continues a dead attempt — and return
    the objective values on rank 0 (None on other ranks).

    The worker's processes are the sweep's own (one per device, or the ranks of a DDP group that
    ``RANK``/``WORLD_SIZE`` describe): Lightning's own environment is pinned, so that under a Slurm
    allocation it does not take the job's ``SLURM_*`` tasks for them."""
    from lightning.fabric.plugins.environments import LightningEnvironment

    from ..train import train

    cfg = compose(overrides)
    check_ranks_agree(cfg)
    monitor = prune_metric(spec)
    pruning = PruningCallback(trial, monitor) if monitor else None
    result = train(
        cfg,
        callbacks=[pruning] if pruning else [],
        run_id=run_id,
        resumption=resumption,
        environment=LightningEnvironment(),
    )
    if pruning is not None:
        pruning.check_pruned()
    if trial is None:
        return None
    values = []
    for objective in spec.objectives:
        if objective.metric not in result.metrics:
            known = ", ".join(sorted(result.metrics))
            raise ObjectiveError(f"the run logged no {objective.metric!r}; it logged: {known}")
        value = result.metrics[objective.metric]
        if not math.isfinite(value):
            raise ObjectiveError(f"{objective.metric} is {value}")
        values.append(value)
    return values
