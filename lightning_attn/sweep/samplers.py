"""How a study searches and prunes: samplers seeded per launch and worker, pruners, and the pruning
callback (which also works under the sweep's own DDP ranks)."""

from __future__ import annotations

import numpy as np
import optuna
from optuna_integration import PyTorchLightningPruningCallback

from . import spec as sweep_spec
from .spec import SweepSpec


def sampler_seed(spec: SweepSpec, launch: int, worker: int) -> int:
    """The sampler seed of one worker of one launch: reproducible from the sweep's seed, and different for
    every worker and every launch — a resumed sweep continues its search instead of replaying the random
    start-up points it already tried (each launch of a fixed seed would draw the same ones)."""
    return int(np.random.SeedSequence([spec.sampler.seed, launch, worker]).generate_state(1)[0])


def make_sampler(spec: SweepSpec, mechanism: str, worker: int, parallel: bool, launch: int = 1):
    s = spec.sampler
    seed = sampler_seed(spec, launch, worker)
    if s.kind == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if s.kind == "grid":
        return optuna.samplers.GridSampler(sweep_spec.grid_of(sweep_spec.space_of(spec, mechanism)), seed=seed)
    if s.kind == "nsga2":
        return optuna.samplers.NSGAIISampler(seed=seed)
    conditional = any(p.when for p in sweep_spec.space_of(spec, mechanism).values())
    return optuna.samplers.TPESampler(
        seed=seed, n_startup_trials=s.n_startup_trials, constant_liar=parallel, multivariate=True, group=conditional
    )


def make_pruner(spec: SweepSpec) -> optuna.pruners.BasePruner:
    p = spec.pruner
    if p.kind == "none" or len(spec.objectives) > 1 or prune_metric(spec) is None:
        return optuna.pruners.NopPruner()
    if p.kind == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=1)
    return optuna.pruners.MedianPruner(n_startup_trials=p.n_startup_trials, n_warmup_steps=p.n_warmup_steps)


def prune_metric(spec: SweepSpec) -> str | None:
    """The metric reported each epoch: a single validation objective, or nothing to prune on."""
    metric = spec.objectives[0].metric
    return metric if len(spec.objectives) == 1 and metric.startswith("val/") else None


class PruningCallback(PyTorchLightningPruningCallback):
    """optuna-integration's pruning callback, also under DDP with any storage.

    Its DDP mode insists on an RDB storage because Lightning's own launcher leaves the trial object
    in the launching process. Here the sweep starts the ranks itself and rank 0 *is* the process
    holding the trial (the other ranks get ``trial=None``): rank 0 reports and decides, the decision
    is broadcast, every rank stops, and :meth:`check_pruned` raises on rank 0 after ``fit``.
    """

    def __init__(self, trial: optuna.Trial | None, monitor: str):
        super().__init__(trial, monitor)  # type: ignore[arg-type]
        self.pruned_at: int | None = None

    def on_fit_start(self, trainer, pl_module) -> None:
        self.is_ddp_backend = trainer.world_size > 1

    def on_validation_end(self, trainer, pl_module) -> None:
        if not self.is_ddp_backend:
            return super().on_validation_end(trainer, pl_module)
        if trainer.sanity_checking:
            return None
        score = trainer.callback_metrics.get(self.monitor)
        prune = False
        if trainer.is_global_zero and score is not None and self._trial is not None:
            self._trial.report(score.item(), step=pl_module.current_epoch)
            prune = self._trial.should_prune()
        if trainer.strategy.broadcast(prune):
            trainer.should_stop = True
            self.pruned_at = pl_module.current_epoch
        return None

    def check_pruned(self) -> None:
        if self.pruned_at is not None and self._trial is not None:
            raise optuna.TrialPruned(f"Trial was pruned at epoch {self.pruned_at}.")
