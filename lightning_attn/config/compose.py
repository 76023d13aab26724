"""The configuration schema and how a run's config is composed.

The schema dataclasses — each group's beside its code (:mod:`lightning_attn.attention`, ``models``,
``data``, ``tasks``), the rest in :mod:`.schema` — are the **single source of every default**; they reach
composition through the registries (:func:`groups`). YAML files in ``conf/<group>/`` pick a
schema and override what they must; ``key=value`` arguments override the YAML. Composition::

    conf/config.yaml  defaults: {task: translation, attention: soft, ...}
      + experiment=name              ->  conf/experiment/<name>.yaml: a preset — group choices, values for
                                         any section, and values per attention choice (``by_attention``)
      + group=choice                 ->  conf/<group>/<choice>.yaml merged onto its schema
      + dotted.key=value             ->  merged onto the result, type-checked

Precedence, lowest first: the schema, the group YAMLs, ``config.yaml``, the experiment, its
``by_attention`` entry for the chosen attention, the command line.

Anything that does not fit — an unknown key, an unknown choice, a value of the wrong type, a
required value left out — raises :class:`ConfigError` with one line naming the key and what is
valid, before anything is written.
"""

from __future__ import annotations

import dataclasses
import typing
from pathlib import Path
from typing import Any

import yaml
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import ConfigKeyError, OmegaConfBaseException, ValidationError

from ..resources import conf_dir
from .errors import ConfigError
from .schema import LOGGERS, RunConfig, TrainerConfig

GROUP_NAMES = ("task", "model", "attention", "data", "trainer", "logger")
#: the preset group: one file sets choices and values across groups (``experiment=multi30k_de_en``)
EXPERIMENT = "experiment"
#: groups whose choices are registered classes (a YAML of their own is optional): mechanisms, tasks, data
#: sources and models a plugin adds compose from their schemas' defaults
REGISTERED = ("attention", "task", "data", "model")


def groups() -> dict[str, tuple[str | None, dict[str, type] | type]]:
    """group -> (the YAML field that selects the schema, {its value: schema}), read off the registries:
    tasks (:data:`lightning_attn.tasks.TASKS`), models, mechanisms and data kinds. ``None``: one schema."""
    from ..attention import MECHANISMS
    from ..data import DATA
    from ..models import MODELS
    from ..tasks import TASKS

    return {
        "task": ("name", {name: spec.config for name, spec in TASKS.items()}),
        "model": ("kind", {kind: schema for kind, (_, schema) in MODELS.items()}),
        "attention": ("mechanism", {name: schema for name, (_, schema) in MECHANISMS.items()}),
        "data": ("kind", {kind: source.schema for kind, source in DATA.items()}),
        "trainer": (None, TrainerConfig),
        "logger": ("kind", LOGGERS),
    }


def task_needs(task: str) -> dict[str, tuple[str, ...]]:
    """What a task can be combined with: group -> the schema selector values it accepts."""
    from ..tasks import TASKS

    spec = TASKS[task]
    return {"model": spec.models, "data": spec.sources}


def default_choice(group: str, root: Path | None = None) -> str:
    """What ``conf/config.yaml`` picks for ``group`` when nothing else does (e.g. the default task)."""
    return str(read_yaml((root or conf_dir()) / "config.yaml").get("defaults", {})[group])


def task_defaults(task: str) -> dict[str, str]:
    """The model and data a task uses unless a preset or the command line picks others (none for a task
    that is not registered: composing it then names the valid tasks)."""
    from ..tasks import TASKS

    return dict(TASKS[task].defaults) if task in TASKS else {}


def task_patience(task: str) -> int:
    """Early stopping's patience where no config sets one: the task's (``AttentionTask.patience``)."""
    from ..tasks import TASKS

    return TASKS[task].patience


def group_choices(group: str, root: Path | None = None) -> list[str]:
    """The choices a group offers: the YAML files in ``conf/<group>/`` — and, for the registered groups, every
    registered mechanism, task, data source and model (its YAML, when it has one, only overrides its schema's
    defaults)."""
    found = {p.stem for p in ((root or conf_dir()) / group).glob("*.yaml")}
    if group in REGISTERED:
        found |= set(groups()[group][1])
    return sorted(found)


def first_line(e: OmegaConfBaseException) -> str:
    """OmegaConf's message without its multi-line context."""
    return str(e).splitlines()[0]


def read_yaml(path: Path) -> dict:
    """A YAML mapping from ``path``; a syntax error names the file, line and column."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except OSError as e:
        raise ConfigError(f"{path}: cannot read ({e.strerror or e})") from None
    except UnicodeDecodeError as e:
        raise ConfigError(f"{path}: not UTF-8 ({e.reason} at byte {e.start})") from None
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else str(path)
        context = f" ({e.context})" if e.context else ""
        raise ConfigError(f"{where}: invalid YAML: {e.problem}{context}") from None
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: invalid YAML ({str(e).splitlines()[0]})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of keys to values")
    return data


def valid_keys(node: Any) -> str:
    return ", ".join(str(k) for k in node) if isinstance(node, DictConfig) else "(none: not a section)"


def unknown_key(data: Any, schema: Any, where: str = "") -> tuple[str, str, list[str]] | None:
    """The first key in ``data`` that its schema does not have, as ``(key, where, valid keys there)``.

    ``schema`` is a dataclass whose fields may hold dataclasses, ``dict[str, X]`` or ``list[X]`` (walked
    into); ``where`` reads like ``space['model.encoder_hidden']`` (keys of user mappings may hold dots).
    """
    origin = typing.get_origin(schema)
    if dataclasses.is_dataclass(schema) and isinstance(data, dict):
        hints = typing.get_type_hints(schema)
        for key, value in data.items():
            if key not in hints:
                return str(key), where or "the top level", list(hints)
            found = unknown_key(value, hints[key], f"{where}.{key}" if where else str(key))
            if found:
                return found
    elif origin is dict and isinstance(data, dict):
        inner = typing.get_args(schema)[1]
        for key, value in data.items():
            found = unknown_key(value, inner, f"{where}[{key!r}]")
            if found:
                return found
    elif origin is list and isinstance(data, list):
        inner = typing.get_args(schema)[0]
        for i, value in enumerate(data):
            found = unknown_key(value, inner, f"{where}[{i}]")
            if found:
                return found
    return None


def _load_group(group: str, choice: str, root: Path) -> DictConfig:
    path = root / group / f"{choice}.yaml"
    selector, schemas = groups()[group]
    if path.is_file():
        data = read_yaml(path)
    elif group in REGISTERED and choice in schemas:
        data = {selector: choice}  # registered, without a YAML of its own: its schema's defaults
    else:
        raise ConfigError(f"unknown {group} {choice!r}; choose one of: {', '.join(group_choices(group, root))}")
    data.pop("defaults", None)  # a task's default choices for other groups, read by compose()
    if selector is None:
        schema = schemas
    else:
        value = data.get(selector)
        if value not in schemas:
            raise ConfigError(f"{path}: {selector} must be one of {', '.join(schemas)}, got {value!r}")
        schema = schemas[value]
    node = OmegaConf.structured(schema)
    try:
        return OmegaConf.merge(node, data)
    except ConfigKeyError as e:
        raise ConfigError(f"{path}: unknown key {e.key!r}; valid keys: {valid_keys(node)}") from None
    except ValidationError as e:
        raise ConfigError(f"{path}: {e.full_key}: {first_line(e)}") from None


def _selects(group: str, choice: str, root: Path) -> str | None:
    """The schema a group choice selects: its YAML's selector value, or (a registered class without a YAML)
    the choice itself."""
    path = root / group / f"{choice}.yaml"
    return read_yaml(path).get(groups()[group][0]) if path.is_file() else choice


@dataclasses.dataclass
class Experiment:
    """A ``conf/experiment/`` preset: group choices, section values, and values per attention choice."""

    name: str
    path: Path
    choices: dict[str, str]
    values: dict[str, Any]
    by_attention: dict[str, dict[str, Any]]


def read_experiment(name: str, root: Path) -> Experiment:
    path = root / EXPERIMENT / f"{name}.yaml"
    if not path.is_file():
        raise ConfigError(f"unknown experiment {name!r}; choose one of: {', '.join(group_choices(EXPERIMENT, root))}")
    data = read_yaml(path)
    choices = data.pop("defaults", None) or {}
    by_attention = data.pop("by_attention", None) or {}
    for what, mapping in (("defaults", choices), ("by_attention", by_attention)):
        if not isinstance(mapping, dict):
            raise ConfigError(f"{path}: {what} must be a mapping")
    for group in choices:
        if group not in GROUP_NAMES:
            raise ConfigError(f"{path}: defaults: unknown group {group!r}; valid groups: {', '.join(GROUP_NAMES)}")
    attention_choices = group_choices("attention", root)
    for choice, values in by_attention.items():
        if choice not in attention_choices:
            raise ConfigError(
                f"{path}: by_attention: unknown attention {choice!r}; choose among: {', '.join(attention_choices)}"
            )
        if not isinstance(values, dict):
            raise ConfigError(f"{path}: by_attention.{choice} must be a mapping of sections to values")
    return Experiment(name, path, {k: str(v) for k, v in choices.items()}, data, by_attention)


def _unknown_file_key(node: Any, values: dict, where: str = "") -> tuple[str, Any] | None:
    """The first dotted key of ``values`` that the composed config ``node`` lacks, with the section it is
    missing from."""
    for key, value in values.items():
        name = f"{where}.{key}" if where else str(key)
        if not isinstance(node, DictConfig) or key == "choices" or key not in node.keys():  # noqa: SIM118
            return name, node
        child = node._get_node(key)
        if isinstance(value, dict) and isinstance(child, DictConfig):
            found = _unknown_file_key(child, value, name)
            if found:
                return found
    return None


def _merge_file_values(cfg: DictConfig, values: dict[str, Any], path: Path | str, where: str = "") -> DictConfig:
    """Merge a file's section values (a preset's, a saved run's) onto the composed config; an unknown key
    names the valid ones."""
    prefix = f"{where}: " if where else ""
    unknown = _unknown_file_key(cfg, values)
    if unknown:
        key, node = unknown
        valid = [k for k in node.keys() if k != "choices"] if isinstance(node, DictConfig) else []  # noqa: SIM118
        raise ConfigError(f"{path}: {prefix}unknown key {key!r}; valid keys there: {', '.join(valid) or '(none)'}")
    try:
        return OmegaConf.merge(cfg, values)
    except OmegaConfBaseException as e:
        key = f"{e.full_key}: " if getattr(e, "full_key", None) else ""
        raise ConfigError(f"{path}: {prefix}{key}{first_line(e)}") from None


def _check_key(cfg: DictConfig, dotted: str) -> None:
    """Raise a ConfigError naming the first unknown part of ``dotted`` and the keys valid there."""
    node: Any = cfg
    parts = dotted.split(".")
    if parts[0] == "choices":
        raise ConfigError(f"{dotted} records the group choices; write GROUP=NAME instead (e.g. attention=hard)")
    for depth, part in enumerate(parts):
        where = ".".join(parts[:depth]) or "the top level"
        if not isinstance(node, DictConfig):
            raise ConfigError(f"unknown key {dotted!r}: {where} is a value, not a section")
        if part not in node.keys():  # noqa: SIM118 — `in node` is False for keys whose value is MISSING
            raise ConfigError(f"unknown key {dotted!r}; valid keys in {where}: {valid_keys(node)}")
        node = node._get_node(part)
    group = parts[0]
    if group in GROUP_NAMES and len(parts) == 2 and parts[1] == groups()[group][0]:
        raise ConfigError(f"{dotted} is set by the group choice; write {group}=NAME instead")


def compose(
    overrides: list[str] | tuple[str, ...] = (),
    root: Path | None = None,
    base: dict[str, Any] | None = None,
    base_source: str = "the saved config",
) -> DictConfig:
    """Compose the run config from ``conf/`` and ``key=value`` overrides.

    Args:
        overrides: ``group=choice`` (e.g. ``attention=hard``), ``experiment=name`` and ``dotted.key=value``
            (e.g. ``trainer.max_epochs=3``).
        root: the config folder; the packaged ``conf/`` by default.
        base: values merged before the ``dotted.key=value`` overrides — a saved run's whole config (as
            ``lightning-attn evaluate`` rebuilds it), without its ``choices``; ``base_source`` names it in errors.

    Raises:
        ConfigError: one line naming the offending key and the valid keys or choices.
    """
    root = root or conf_dir()
    defaults = read_yaml(root / "config.yaml")
    explicit, dotted, experiment = _read_overrides(overrides, root)
    preset = experiment.choices if experiment else {}
    choices = dict(defaults.pop("defaults", {}))
    # the task names its own default model and data; an experiment overrides those, the command line all
    choices.update(task_defaults(explicit.get("task", preset.get("task", choices.get("task")))))
    choices.update(preset)
    choices.update(explicit)
    cfg = _groups_chosen(choices, root)
    cfg.choices = choices | ({EXPERIMENT: experiment.name} if experiment else {})
    try:
        cfg = OmegaConf.merge(cfg, defaults)
    except OmegaConfBaseException as e:
        raise ConfigError(f"{root / 'config.yaml'}: {first_line(e)}") from None
    OmegaConf.set_struct(cfg, True)
    if experiment:
        cfg = _merge_file_values(cfg, experiment.values, experiment.path)
        per_attention = experiment.by_attention.get(choices["attention"])
        if per_attention:
            cfg = _merge_file_values(cfg, per_attention, experiment.path, f"by_attention.{choices['attention']}")
    if base:
        cfg = _merge_file_values(cfg, base, base_source)
    cfg = apply_overrides(cfg, dotted)
    if cfg.early_stopping.patience is None:  # the task's own, written into the config so every run records it
        cfg.early_stopping.patience = task_patience(cfg.task.name)

    missing = sorted(OmegaConf.missing_keys(cfg))
    if missing:
        raise ConfigError(f"{missing[0]} needs a value: add {missing[0]}=... to the command line")
    try:
        OmegaConf.resolve(cfg)
    except OmegaConfBaseException as e:
        raise ConfigError(f"cannot resolve the config: {first_line(e)}") from None
    _check_attention_fits(cfg)
    return cfg


def _check_attention_fits(cfg: DictConfig) -> None:
    """A mechanism the model cannot use where it would use it is refused now, in one line, not mid-run."""
    from ..models import check_attention

    try:
        check_attention(to_container(cfg.model), to_container(cfg.attention))
    except ValueError as e:
        raise ConfigError(str(e)) from None


def _read_overrides(
    overrides: list[str] | tuple[str, ...], root: Path
) -> tuple[dict[str, str], list[tuple[str, str]], Experiment | None]:
    """``(group choices, dotted.key=value pairs, the experiment)`` the overrides name, in their order."""
    explicit: dict[str, str] = {}
    dotted: list[tuple[str, str]] = []
    experiment: Experiment | None = None
    for item in overrides:
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ConfigError(f"cannot read override {item!r}: expected key=value (e.g. attention=hard)")
        if key == EXPERIMENT:
            experiment = read_experiment(value, root)
        elif key in GROUP_NAMES:
            explicit[key] = value
        else:
            dotted.append((key, value))
    return explicit, dotted, experiment


def _groups_chosen(choices: dict[str, str], root: Path) -> DictConfig:
    """The structured config with each group's chosen file loaded; a choice its task cannot use is one line."""
    cfg = OmegaConf.structured(RunConfig)
    for group in GROUP_NAMES:
        if group not in choices:
            raise ConfigError(f"{root / 'config.yaml'}: no default for group {group!r}")
        cfg[group] = _load_group(group, choices[group], root)
    for group, accepted in task_needs(cfg.task.name).items():
        selector = groups()[group][0]
        if cfg[group][selector] not in accepted:
            valid = [c for c in group_choices(group, root) if _selects(group, c, root) in accepted]
            raise ConfigError(
                f"task {cfg.task.name} cannot use {group}={choices[group]}; choose one of: {', '.join(valid)}"
            )
    return cfg


def parse_seeds(text: str) -> list[int]:
    """``0-4``, ``0,1,2``, ``[0, 1, 2]`` or ``3`` as a list of seeds.

    Raises:
        ConfigError: anything else, in one line.
    """
    body = text.strip().removeprefix("[").removesuffix("]").replace(" ", "")
    try:
        if "-" in body.lstrip("-") and "," not in body:
            first, _, last = body.partition("-")
            seeds = list(range(int(first), int(last) + 1))
        else:
            seeds = [int(part) for part in body.split(",") if part]
    except ValueError:
        seeds = []
    if not seeds:
        raise ConfigError(f"seeds={text}: write a range (0-4), a list (0,1,2) or one seed (3)")
    return seeds


def apply_overrides(cfg: DictConfig, dotted: list[tuple[str, str]] | list[str]) -> DictConfig:
    """Merge ``dotted.key=value`` overrides (pairs, or ``"key=value"`` strings) onto a composed config, each
    key checked (an unknown one names the valid keys where it went wrong) and each value type-checked."""
    for item in dotted:
        key, value = item if isinstance(item, tuple) else item.split("=", 1) if "=" in item else (item, None)
        if value is None:
            raise ConfigError(f"cannot read override {item!r}: expected key=value")
        _check_key(cfg, key)
        if key == "seeds" and value.strip() not in ("", "[]", "null", "~"):  # 0-4, 0,1,2 or [0, 1, 2], as compare
            value = "[" + ",".join(str(s) for s in parse_seeds(value)) + "]"
        try:
            cfg = OmegaConf.merge(cfg, OmegaConf.from_dotlist([f"{key}={value}"]))
        except OmegaConfBaseException as e:
            raise ConfigError(f"invalid value for {key}: {first_line(e)}") from None
    return cfg


def to_container(cfg: DictConfig) -> dict:
    """Plain nested dict of a composed config (enums as strings)."""
    return OmegaConf.to_container(cfg, resolve=True, enum_to_str=True)


def to_yaml(cfg: DictConfig) -> str:
    return OmegaConf.to_yaml(OmegaConf.create(to_container(cfg)))


def flatten(cfg: DictConfig | dict, prefix: str = "") -> dict[str, Any]:
    """``{"a": {"b": 1}} -> {"a.b": 1}``: the keys a user types on the command line."""
    data = to_container(cfg) if isinstance(cfg, DictConfig) else cfg
    flat: dict[str, Any] = {}
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            flat.update(flatten(value, name + "."))
        else:
            flat[name] = value
    return flat


def section(cfg: DictConfig, group: str) -> dict:
    """One group as a plain dict (what constructors take)."""
    return to_container(cfg[group])


__all__ = [
    "EXPERIMENT",
    "default_choice",
    "GROUP_NAMES",
    "apply_overrides",
    "compose",
    "first_line",
    "flatten",
    "group_choices",
    "groups",
    "read_yaml",
    "section",
    "task_needs",
    "to_container",
    "to_yaml",
    "unknown_key",
    "valid_keys",
]
