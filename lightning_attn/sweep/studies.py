"""A sweep's Optuna studies: one search study per mechanism (and one seeds study each), created on the
first launch, reopened by ``--resume``, joined by other hosts (``--join``) — never mixed with a different
sweep definition."""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import optuna
from optuna.storages import BaseStorage

from ..config import ConfigError
from . import spec as sweep_spec
from .launch import Devices
from .spec import SweepSpec
from .storage import describe

#: sweep-file fields that define what a study searches; changing them between launches mixes results
IDENTITY = ("task", "overrides", "mechanisms", "space", "objectives", "seed", "vary_seed")
#: fields that set how much runs: --resume may change them (to extend a sweep), a joining host may not
BUDGET = ("n_trials", "timeout", "seeds", "max_retries")
IDENTITY_ATTR, BUDGET_ATTR, LAUNCHES_ATTR = "sweep.identity", "sweep.budget", "sweep.launches"


@dataclass
class Sweep:
    """One launch of a sweep: its definition, where it keeps its studies and runs, and on what it runs."""

    spec: SweepSpec
    folder: Path
    storage_url: str | None
    tracking_uri: str
    devices: Devices
    ddp: bool = False
    studies: dict[str, optuna.Study] = field(default_factory=dict)
    launch: int = 1  # 1 on the first launch, one more on every --resume

    @property
    def n_workers(self) -> int:
        return 1 if self.ddp else len(self.devices.ids)


def identity(spec: SweepSpec, fields: tuple[str, ...] = IDENTITY) -> str:
    from omegaconf import OmegaConf

    data = OmegaConf.to_container(OmegaConf.structured(spec))
    return json.dumps({k: data[k] for k in fields}, sort_keys=True)


def name_objectives(study: optuna.Study, spec: SweepSpec) -> None:
    """The study's objectives by the metrics they are (``val/bleu``, ``speed/infer_latency_ms_p50_b1``), so that
    optuna-dashboard and ``study.trials_dataframe()`` name them instead of saying "Objective 0"."""
    names = [o.metric for o in spec.objectives]
    if study.metric_names != names:
        with warnings.catch_warnings():  # experimental in Optuna 4
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            study.set_metric_names(names)


def open_studies(sweep: Sweep, storage: BaseStorage, resume: bool = False, join: bool = False) -> None:
    """Create the studies, or with ``resume`` reopen them, or with ``join`` reopen the ones another host
    created (never create them: a typo in the name must not start a second sweep); count this launch.

    Joining is explicit rather than automatic for the same reason: two unrelated sweeps that happen to share
    a name would otherwise be merged silently.

    Raises:
        ConfigError: the sweep exists and neither ``resume`` nor ``join`` was asked for; ``join`` and there is
            nothing to join; or it was started from a different definition (task, overrides, mechanisms,
            space, objectives or seed).
    """
    spec = sweep.spec
    where = describe(sweep.storage_url, sweep.folder)
    existing = {s.study_name: s for s in optuna.get_all_study_summaries(storage, include_best_trial=False)}
    names = {key: sweep_spec.study_name(spec, key) for key in sweep_spec.study_keys(spec)}
    found = [n for n in names.values() if n in existing]
    if found and not (resume or join):
        listing = ", ".join(f"{n} ({existing[n].n_trials} trials)" for n in found)
        raise ConfigError(
            f"sweep {spec.name!r} already exists in {where}: {listing}. Pass --resume to continue it (--join "
            f"from another host while it runs), or start a new one with another name (name=...) or folder (--out)"
        )
    if join and len(found) < len(names):
        missing = ", ".join(n for n in names.values() if n not in existing)
        raise ConfigError(
            f"nothing to join: {where} has no study {missing}; start the sweep on one host without --join first"
        )
    for key, name in names.items():
        study = optuna.create_study(
            study_name=name, storage=storage, directions=sweep_spec.directions(spec), load_if_exists=True
        )
        stored = study.user_attrs.get(IDENTITY_ATTR)
        if stored is not None and stored != identity(spec):
            raise ConfigError(
                f"study {name} was started from a different sweep file (task, overrides, mechanisms, space, "
                f"objectives or seed changed); --resume only continues the same search. Use another name=..."
            )
        budget = identity(spec, BUDGET)
        if join and study.user_attrs.get(BUDGET_ATTR, budget) != budget:
            raise ConfigError(
                f"study {name} runs with {study.user_attrs[BUDGET_ATTR]}, this sweep file says {budget}: every "
                "host must run the same sweep file (change the budget with --resume on one host instead)"
            )
        if not join:
            study.set_user_attr(BUDGET_ATTR, budget)
        name_objectives(study, spec)
        if stored is None:
            study.set_user_attr(IDENTITY_ATTR, identity(spec))
            study.set_user_attr("mechanism", sweep_spec.mechanism_of(key))
            study.set_user_attr("role", "seeds" if sweep_spec.is_seeds(key) else "search")
        sweep.studies[key] = study
    # every launch gets its own number: workers seed their samplers with it, so no launch replays another
    first = next(iter(sweep.studies.values()))
    sweep.launch = int(first.user_attrs.get(LAUNCHES_ATTR, 0)) + 1
    first.set_user_attr(LAUNCHES_ATTR, sweep.launch)
