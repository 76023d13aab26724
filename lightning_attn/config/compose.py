"""The configuration schema and how a run's config is composed.

The schema dataclasses — each group's beside its code (:mod:`lightning_attn.attention`, ``models``,
``data``, ``tasks``), the rest in :mod:`.schema` — are the **single source of every default**; they reach
composition through the registries (:func:`groups`). YAML files in ``conf/<group>/`` pick a
schema and override what they must; ``key=value`` arguments override the YAML. Composition::

    conf/config.yaml  defaults: {task: translation, attention: soft, ...}
      + group=choice                 ->  conf/<group>/<choice>.yaml merged onto its schema
      + dotted.key=value             ->  merged onto the result, type-checked

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
        "data": ("kind", dict(DATA)),
        "trainer": (None, TrainerConfig),
        "logger": ("kind", LOGGERS),
    }


def task_needs(task: str) -> dict[str, tuple[str, ...]]:
    """What a task can be combined with: group -> the schema selector values it accepts."""
    from ..tasks import TASKS

    spec = TASKS[task]
    return {"model": spec.models, "data": spec.data}


def group_choices(group: str, root: Path | None = None) -> list[str]:
    """The choices a group offers: the YAML files in ``conf/<group>/`` — and, for ``attention``, every
    registered mechanism (its YAML, when it has one, only overrides its schema's defaults)."""
    found = {p.stem for p in ((root or conf_dir()) / group).glob("*.yaml")}
    if group == "attention":
        found |= set(groups()["attention"][1])
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
    elif group == "attention" and choice in schemas:
        data = {selector: choice}  # a registered mechanism without a YAML of its own: its schema's defaults
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


def compose(overrides: list[str] | tuple[str, ...] = (), root: Path | None = None) -> DictConfig:
    """Compose the run config from ``conf/`` and ``key=value`` overrides.

    Args:
        overrides: ``group=choice`` (e.g. ``attention=hard``) and ``dotted.key=value``
            (e.g. ``trainer.max_epochs=3``).
        root: the config folder; the packaged ``conf/`` by default.

    Raises:
        ConfigError: one line naming the offending key and the valid keys or choices.
    """
    root = root or conf_dir()
    defaults = read_yaml(root / "config.yaml")
    choices = dict(defaults.pop("defaults", {}))
    explicit: dict[str, str] = {}
    dotted: list[tuple[str, str]] = []
    for item in overrides:
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ConfigError(f"cannot read override {item!r}: expected key=value (e.g. attention=hard)")
        if key in GROUP_NAMES:
            explicit[key] = value
        else:
            dotted.append((key, value))
    # the task's YAML names its own default model/data; the command line still wins
    task_file = root / "task" / f"{explicit.get('task', choices.get('task'))}.yaml"
    if task_file.is_file():
        choices.update(read_yaml(task_file).get("defaults", {}))
    choices.update(explicit)

    cfg = OmegaConf.structured(RunConfig)
    for group in GROUP_NAMES:
        if group not in choices:
            raise ConfigError(f"{root / 'config.yaml'}: no default for group {group!r}")
        cfg[group] = _load_group(group, choices[group], root)
    cfg.choices = choices
    for group, accepted in task_needs(cfg.task.name).items():
        selector = groups()[group][0]
        if cfg[group][selector] not in accepted:
            valid = [
                c for c in group_choices(group, root) if read_yaml(root / group / f"{c}.yaml").get(selector) in accepted
            ]
            raise ConfigError(
                f"task {cfg.task.name} cannot use {group}={choices[group]}; choose one of: {', '.join(valid)}"
            )
    try:
        cfg = OmegaConf.merge(cfg, defaults)
    except OmegaConfBaseException as e:
        raise ConfigError(f"{root / 'config.yaml'}: {first_line(e)}") from None
    OmegaConf.set_struct(cfg, True)

    for key, value in dotted:
        _check_key(cfg, key)
        try:
            cfg = OmegaConf.merge(cfg, OmegaConf.from_dotlist([f"{key}={value}"]))
        except OmegaConfBaseException as e:
            raise ConfigError(f"invalid value for {key}: {first_line(e)}") from None

    missing = sorted(OmegaConf.missing_keys(cfg))
    if missing:
        raise ConfigError(f"{missing[0]} needs a value: add {missing[0]}=... to the command line")
    try:
        OmegaConf.resolve(cfg)
    except OmegaConfBaseException as e:
        raise ConfigError(f"cannot resolve the config: {first_line(e)}") from None
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
    "GROUP_NAMES",
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
