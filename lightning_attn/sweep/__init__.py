"""Optuna sweeps: one study per mechanism, workers per device, MLflow parent/child runs.

:mod:`.spec` reads sweep files, :mod:`.storage` opens Optuna storages (with heartbeats),
:mod:`.worker` runs trials, :mod:`.runner` is the ``lightning-attn sweep`` command.
"""

from .runner import run_sweep
from .spec import SweepSpec, load

__all__ = ["SweepSpec", "load", "run_sweep"]
