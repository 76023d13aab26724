"""Sweep files: what to tune, for which mechanisms, with which budget.

A sweep file (``sweeps/NAME.yaml``) is read into :class:`SweepSpec`, whose dataclasses are the schema
and the single source of defaults. Example::

    name: example
    task: translation
    overrides: [trainer.max_epochs=2]        # every trial of every mechanism
    mechanisms:                              # one Optuna study each, the same budget each
      soft: {}
      hard:
        overrides: [attention.semi_sampling_p=0.5]
        space:                               # added to the shared space for this mechanism
          attention.entropy_weight: {type: float, low: 1.0e-4, high: 1.0e-1, log: true}
    space:                                   # shared: dotted run-config keys
      task.lr: {type: float, low: 1.0e-4, high: 1.0e-2, log: true}
      attention.score: {type: categorical, choices: [additive, general]}
      attention.hidden_dim: {type: int, low: 32, high: 128, step: 32, when: {attention.score: additive}}
    objectives: [{metric: val/bleu, direction: maximize}]
    n_trials: 4

``when`` makes a parameter conditional: it is only suggested when the named parameters (suggested
earlier in the file's order) took the listed value(s). Two or more objectives make a multi-objective
study (no pruning: Optuna cannot prune those).

A sweep with **no search space** (no ``space``, for any mechanism) is a *comparison without tuning*: each
mechanism, with its fixed overrides, is trained once per seed of ``seeds`` (default: ``[seed]``) — one
study per mechanism, through the same workers, budget, resume and ``--join`` as a search
(``lightning-attn compare`` writes such a sweep from the command line)::

    name: study
    task: translation
    mechanisms: {soft: {}, hard: {}, hard-p75: {attention: hard, overrides: [attention.semi_sampling_p=0.75]}}
    seeds: [0, 1, 2, 3, 4]
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import optuna
from omegaconf import MISSING, OmegaConf
from omegaconf.errors import OmegaConfBaseException, ValidationError

from ..config import ConfigError, compose, first_line, read_yaml, unknown_key
from ..tasks import TASKS

SPEC_FILE = "sweep.yaml"  # the copy of the sweep definition a launch leaves in its folder; workers read it
PARAM_TYPES = ("float", "int", "categorical")
SAMPLERS = ("tpe", "random", "nsga2", "grid")
PRUNERS = ("median", "hyperband", "none")
DIRECTIONS = ("maximize", "minimize")


@dataclass
class ParamSpec:
    """One tuned run-config key."""

    type: str = MISSING  # float | int | categorical
    low: Any = None  # float/int
    high: Any = None
    log: bool = False
    step: Any = None  # int (default 1) or float (a grid of low + k*step)
    choices: list[Any] = field(default_factory=list)  # categorical
    when: dict[str, Any] = field(default_factory=dict)  # {earlier param: value or [values]}


@dataclass
class MechanismSpec:
    """One compared mechanism: an ``attention`` choice plus its own overrides and extra space."""

    attention: str | None = None  # the conf/attention/ choice; defaults to the mechanism's name
    overrides: list[str] = field(default_factory=list)
    space: dict[str, ParamSpec] = field(default_factory=dict)


@dataclass
class ObjectiveSpec:
    metric: str = MISSING  # a metric name the run logs, e.g. val/bleu
    direction: str = "maximize"


@dataclass
class SamplerSpec:
    kind: str = "tpe"  # tpe (constant_liar when workers run in parallel) | random | nsga2 | grid
    seed: int = 0  # worker w samples with seed + w, so parallel workers do not propose the same points
    n_startup_trials: int = 4  # tpe: random trials before the model kicks in


@dataclass
class PrunerSpec:
    kind: str = "median"  # median | hyperband | none (forced for multi-objective studies)
    n_startup_trials: int = 2  # median: trials that are never pruned
    n_warmup_steps: int = 0  # median: epochs before pruning starts


@dataclass
class SweepSpec:
    name: str = MISSING
    task: str = MISSING  # translation | captioning
    experiment: str | None = None  # MLflow experiment; default: the sweep's name
    overrides: list[str] = field(default_factory=list)  # run-config overrides for every trial
    mechanisms: dict[str, MechanismSpec] = field(default_factory=dict)
    space: dict[str, ParamSpec] = field(default_factory=dict)
    objectives: list[ObjectiveSpec] = field(default_factory=list)  # default: the task's validation metric
    sampler: SamplerSpec = field(default_factory=SamplerSpec)
    pruner: PrunerSpec = field(default_factory=PrunerSpec)
    n_trials: int | None = 8  # per mechanism; None = until timeout
    timeout: float | None = None  # seconds per mechanism and worker; None = until n_trials
    seed: int = 0  # the run seed of every trial ...
    vary_seed: bool = False  # ... or seed + trial number
    # after the search, each mechanism's best parameters are trained once per seed (the runs spread
    # over the workers) in a study "<name>-<mechanism>-seeds", whose parent run gets mean/std/95 % CI
    seeds: list[int] = field(default_factory=list)
    # seeds until decided: train the seeds above first, look at every pair of mechanisms (the report's tests, over
    # the family), and give one more seed to each mechanism with a pair still undecided, up to max_seeds a side
    until_decided: bool = False
    max_seeds: int | None = None  # with until_decided; default: the seeds above and 5 more
    # after the seed runs, one checkpoint per mechanism is timed side by side in one process (lightning-attn
    # benchmark runs): the speed and memory figures the report compares
    speed_pass: bool = True
    heartbeat_interval: int = 10  # seconds between a running trial's heartbeats
    grace_period: int = 60  # a RUNNING trial silent this long is failed and retried
    worker_restarts: int = 3  # a worker that dies while work remains is replaced, this many times per launch
    # a trial whose worker died (killed, out of memory, host lost) is retried this many times, then FAILED for good
    max_retries: int = 2


# ─── reading ───────────────────────────────────────────────────────────────────────────────────
_SECTIONS = ("mechanisms", "space", "objectives", "sampler", "pruner")  # sweep keys that have sub-keys


def _top_level_field(key: str) -> bool:
    """Whether ``key`` belongs to the sweep file (``n_trials``, ``sampler.kind``) rather than to every
    trial's run config (``trainer.max_epochs``, and ``task.lr`` although ``task`` alone is a sweep key)."""
    head = key.split(".")[0].split("[")[0]
    return head in _SECTIONS if "." in key else head in SweepSpec.__dataclass_fields__


def load(path: str | Path, overrides: list[str] | tuple[str, ...] = ()) -> SweepSpec:
    """Read and check a sweep file.

    ``overrides`` are ``key=value``: keys of the sweep file (``n_trials=2``, ``sampler.kind=random``)
    change the sweep; anything else (``trainer.max_epochs=1``) is added to every trial's overrides.
    """
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"sweep file {path} not found")
    return from_dict(read_yaml(path), path, overrides)


def from_dict(data: dict, path: str | Path, overrides: list[str] | tuple[str, ...] = ()) -> SweepSpec:
    """A sweep definition from its parsed YAML (``path`` names it in messages), checked as :func:`load` does."""
    _refuse_unknown_keys(data, str(path))
    spec_node = OmegaConf.structured(SweepSpec)
    try:
        spec_node = OmegaConf.merge(spec_node, data)
    except ValidationError as e:
        raise ConfigError(f"{path}: {e.full_key}: {first_line(e)}") from None
    except OmegaConfBaseException as e:
        raise ConfigError(f"{path}: {first_line(e)}") from None
    run_overrides: list[str] = []
    for item in overrides:
        key, sep, value = item.partition("=")
        if not sep:
            raise ConfigError(f"cannot read override {item!r}: expected key=value (e.g. n_trials=4)")
        if not _top_level_field(key.strip()):
            run_overrides.append(item)
            continue
        nested: dict = {}
        node = nested
        *heads, last = key.strip().split(".")
        for part in heads:
            node = node.setdefault(part, {})
        node[last] = value
        _refuse_unknown_keys(nested, "the command line")
        try:
            spec_node = OmegaConf.merge(spec_node, OmegaConf.from_dotlist([item]))
        except OmegaConfBaseException as e:
            raise ConfigError(f"invalid value for {key}: {first_line(e)}") from None
    missing = sorted(OmegaConf.missing_keys(spec_node))
    if missing:
        raise ConfigError(f"{path}: {missing[0]} needs a value")
    spec: SweepSpec = OmegaConf.to_object(spec_node)
    spec.overrides = [*spec.overrides, *run_overrides]
    if not spec.mechanisms:
        raise ConfigError(f"{path}: mechanisms is empty; name at least one, e.g. mechanisms: {{soft: {{}}}}")
    for name, mech in spec.mechanisms.items():
        mech.attention = mech.attention or name
    if not spec.objectives:
        if spec.task not in TASKS:
            raise ConfigError(f"{path}: task {spec.task!r} unknown; choose one of: {', '.join(TASKS)}")
        task = TASKS[spec.task]
        spec.objectives = [ObjectiveSpec(task.monitor, "maximize" if task.mode == "max" else "minimize")]
    check(spec, path)
    return spec


def comparison(
    task: str,
    mechanisms: list[str],
    seeds: list[int],
    overrides: list[str] = (),
    name: str | None = None,
    *,
    until_decided: bool = False,
    max_seeds: int | None = None,
    speed_pass: bool = True,
) -> SweepSpec:
    """The sweep ``lightning-attn compare`` runs: ``mechanisms`` (attention choices) trained as configured by
    ``overrides``, once per seed — no search space, so no tuning (:func:`is_comparison`); ``until_decided``:
    more seeds, up to ``max_seeds``, while a pair is undecided; ``speed_pass``: then time one checkpoint per
    mechanism side by side."""
    data = {
        "name": name or f"compare-{task}",
        "task": task,
        "overrides": list(overrides),
        "mechanisms": {m: {} for m in mechanisms},
        "seeds": list(seeds),
        "until_decided": until_decided,
        "max_seeds": max_seeds,
        "speed_pass": speed_pass,
    }
    return from_dict(data, "compare")


def _refuse_unknown_keys(data: dict, where: str) -> None:
    """One line naming a key the schema does not have, and the keys valid at that level."""
    found = unknown_key(data, SweepSpec)
    if found:
        key, level, valid = found
        raise ConfigError(f"{where}: unknown key {key!r} in {level}; valid keys there: {', '.join(valid)}")


def check(spec: SweepSpec, where: Any = "sweep") -> None:
    """Everything that can be checked before a trial runs: choices, ranges, and that every trial's
    config composes (so a typo in a key fails now, not in every trial)."""
    if spec.n_trials is None and spec.timeout is None:
        raise ConfigError(f"{where}: set n_trials, timeout or both, or the sweep never ends")
    if spec.n_trials is not None and spec.n_trials < 1:
        raise ConfigError(f"{where}: n_trials must be at least 1")
    if spec.sampler.kind not in SAMPLERS:
        raise ConfigError(f"{where}: sampler.kind {spec.sampler.kind!r}; choose one of: {', '.join(SAMPLERS)}")
    if spec.pruner.kind not in PRUNERS:
        raise ConfigError(f"{where}: pruner.kind {spec.pruner.kind!r}; choose one of: {', '.join(PRUNERS)}")
    for objective in spec.objectives:
        if objective.direction not in DIRECTIONS:
            raise ConfigError(f"{where}: direction {objective.direction!r}; choose one of: {', '.join(DIRECTIONS)}")
    if spec.seeds and len(spec.objectives) > 1 and not is_comparison(spec):
        raise ConfigError(f"{where}: seeds retrain the best trial, which needs a single objective")
    if len(set(spec.seeds)) != len(spec.seeds):
        raise ConfigError(f"{where}: seeds has duplicates: {spec.seeds}")
    if spec.until_decided and len(seeds_of(spec)) < 3:
        raise ConfigError(
            f"{where}: until_decided looks first after the seeds it is given: give at least 3 "
            "(seeds=0-2), the seed runs a report's verdict needs"
        )
    if spec.until_decided and spec.max_seeds is not None and spec.max_seeds < len(seeds_of(spec)):
        raise ConfigError(
            f"{where}: max_seeds={spec.max_seeds} is fewer than the {len(seeds_of(spec))} seeds it starts with"
        )
    if spec.max_seeds is not None and not spec.until_decided:
        raise ConfigError(f"{where}: max_seeds caps until_decided: set until_decided: true (--until-decided)")
    if spec.max_retries < 0:
        raise ConfigError(f"{where}: max_retries must be >= 0, got {spec.max_retries}")
    if spec.heartbeat_interval < 1 or spec.grace_period <= spec.heartbeat_interval:
        raise ConfigError(f"{where}: need heartbeat_interval >= 1 and grace_period > heartbeat_interval")
    for name in spec.mechanisms:
        space = space_of(spec, name)
        for key, param in space.items():
            _check_param(key, param, list(space)[: list(space).index(key)], where)
        if spec.sampler.kind == "grid":
            grid_of(space, where)
        # compose with each parameter at its first value: catches unknown keys and wrong types
        probe = {key: (p.choices[0] if p.type == "categorical" else p.low) for key, p in space.items()}
        compose(run_overrides(spec, name, probe, seed=spec.seed))


def _check_param(key: str, p: ParamSpec, earlier: list[str], where: Any) -> None:
    if p.type not in PARAM_TYPES:
        raise ConfigError(f"{where}: {key}: type {p.type!r}; choose one of: {', '.join(PARAM_TYPES)}")
    if p.type == "categorical":
        if not p.choices:
            raise ConfigError(f"{where}: {key}: a categorical parameter needs choices")
    else:
        if p.low is None or p.high is None or not p.low <= p.high:
            raise ConfigError(f"{where}: {key}: a {p.type} parameter needs low <= high")
        if p.log and p.low <= 0:
            raise ConfigError(f"{where}: {key}: a log-scale parameter needs low > 0")
        if p.log and p.step is not None:
            raise ConfigError(f"{where}: {key}: log scale and step cannot be combined (Optuna refuses it)")
    for other in p.when:
        if other not in earlier:
            raise ConfigError(f"{where}: {key}: when names {other!r}, which is not a parameter listed before it")


def space_of(spec: SweepSpec, mechanism: str) -> dict[str, ParamSpec]:
    """The shared space plus the mechanism's own (which wins on a shared key)."""
    return {**spec.space, **spec.mechanisms[mechanism].space}


def grid_of(space: dict[str, ParamSpec], where: Any = "sweep") -> dict[str, list[Any]]:
    """The grid sampler's search space: categorical choices, and int/float ranges with a step."""
    grid: dict[str, list[Any]] = {}
    for key, p in space.items():
        if p.when:
            raise ConfigError(f"{where}: {key}: the grid sampler cannot search a conditional parameter")
        if p.type == "categorical":
            grid[key] = list(p.choices)
        elif p.type == "int":
            grid[key] = list(range(p.low, p.high + 1, p.step or 1))
        elif p.step is not None:
            count = round((p.high - p.low) / p.step)
            grid[key] = [p.low + k * p.step for k in range(count + 1)]
        else:
            raise ConfigError(f"{where}: {key}: the grid sampler needs a step for a float parameter")
    return grid


# ─── from a trial to a run config ──────────────────────────────────────────────────────────────
def suggest(trial: optuna.Trial, space: dict[str, ParamSpec]) -> dict[str, Any]:
    """Ask the trial for every active parameter, in the file's order."""
    values: dict[str, Any] = {}
    for key, p in space.items():
        if not _active(p, values):
            continue
        if p.type == "categorical":
            values[key] = trial.suggest_categorical(key, list(p.choices))
        elif p.type == "int":
            values[key] = trial.suggest_int(key, p.low, p.high, step=p.step or 1, log=p.log)
        else:
            values[key] = trial.suggest_float(key, float(p.low), float(p.high), step=p.step, log=p.log)
    return values


def _active(p: ParamSpec, values: dict[str, Any]) -> bool:
    for other, wanted in p.when.items():
        accepted = wanted if isinstance(wanted, list) else [wanted]
        if other not in values or values[other] not in accepted:
            return False
    return True


def run_overrides(spec: SweepSpec, mechanism: str, params: dict[str, Any], seed: int) -> list[str]:
    """The run-config overrides of one trial, lowest priority first."""
    mech = spec.mechanisms[mechanism]
    sampled = [f"{key}={_literal(value)}" for key, value in params.items()]
    return [
        f"task={spec.task}",
        f"attention={mech.attention}",
        *spec.overrides,
        *mech.overrides,
        *sampled,
        f"seed={seed}",
    ]


def _literal(value: Any) -> str:
    return repr(value) if isinstance(value, float) else str(value)


SEEDS = "+seeds"  # a study key ending in this is the seeds study of that mechanism


class StudyKey(str):
    """Which study of a sweep: a mechanism's search (``soft``) or its seed runs (``soft+seeds``). A ``str``, so
    that the sweep's tables, records and messages show it as they always did; its parts are read here only."""

    @classmethod
    def of(cls, mechanism: str, *, seeds: bool) -> StudyKey:
        return cls(f"{mechanism}{SEEDS}" if seeds else mechanism)

    @property
    def mechanism(self) -> str:
        return str(self).removesuffix(SEEDS)

    @property
    def seeds(self) -> bool:
        return self.endswith(SEEDS)


def is_comparison(spec: SweepSpec) -> bool:
    """No mechanism has anything to search: a comparison without tuning (seed runs only)."""
    return not any(space_of(spec, m) for m in spec.mechanisms)


def seeds_of(spec: SweepSpec) -> list[int]:
    """The seeds each mechanism is trained with after (or, in a comparison, instead of) the search."""
    return list(spec.seeds) or ([spec.seed] if is_comparison(spec) else [])


def seeds_plan(spec: SweepSpec) -> list[int]:
    """Every seed a mechanism may be trained with: its seeds, and with ``until_decided`` the next ones after the
    largest, up to ``max_seeds`` (default: 5 more) — the order in which they are given."""
    seeds = seeds_of(spec)
    if not spec.until_decided or not seeds:
        return seeds
    most = spec.max_seeds if spec.max_seeds is not None else len(seeds) + 5
    return seeds + list(range(max(seeds) + 1, max(seeds) + 1 + most - len(seeds)))


def study_keys(spec: SweepSpec) -> list[StudyKey]:
    """One search study per mechanism, then (with ``seeds``) one seeds study per mechanism; a comparison has
    the seeds studies alone."""
    seeds = [StudyKey.of(m, seeds=True) for m in spec.mechanisms if seeds_of(spec)]
    return seeds if is_comparison(spec) else [*(StudyKey.of(m, seeds=False) for m in spec.mechanisms), *seeds]


def mechanism_of(key: str) -> str:
    return StudyKey(key).mechanism


def is_seeds(key: str) -> bool:
    return StudyKey(key).seeds


def is_seeds_study(study: Any) -> bool:
    """Whether an Optuna study (by its name) is a seeds study."""
    return study.study_name.endswith("-seeds")


def study_name(spec: SweepSpec, key: str) -> str:
    return f"{spec.name}-{mechanism_of(key)}" + ("-seeds" if is_seeds(key) else "")


def experiment_name(spec: SweepSpec) -> str:
    return spec.experiment or spec.name


def directions(spec: SweepSpec) -> list[str]:
    return [o.direction for o in spec.objectives]


def to_yaml(spec: SweepSpec) -> str:
    return OmegaConf.to_yaml(OmegaConf.structured(spec))
