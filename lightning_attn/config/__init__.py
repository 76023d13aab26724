"""Configuration: the schema and how a run's config is composed from ``conf/`` and ``key=value`` overrides.

:mod:`.schema` holds the sections every run has; each group's schemas live beside their code and are
found through their registries; :mod:`.compose` puts a config together and checks it.
"""

from .compose import (
    EXPERIMENT,
    GROUP_NAMES,
    apply_overrides,
    compose,
    default_choice,
    first_line,
    flatten,
    group_choices,
    groups,
    parse_seeds,
    read_yaml,
    section,
    task_needs,
    to_container,
    to_yaml,
    unknown_key,
    valid_keys,
)
from .errors import ConfigError
from .schema import (
    LOGGERS,
    EarlyStoppingConfig,
    MLflowLoggerConfig,
    RunConfig,
    SpeedConfig,
    StabilityConfig,
    TrainerConfig,
)

__all__ = [
    "EXPERIMENT",
    "GROUP_NAMES",
    "apply_overrides",
    "LOGGERS",
    "ConfigError",
    "EarlyStoppingConfig",
    "MLflowLoggerConfig",
    "RunConfig",
    "SpeedConfig",
    "StabilityConfig",
    "TrainerConfig",
    "compose",
    "default_choice",
    "first_line",
    "flatten",
    "group_choices",
    "groups",
    "parse_seeds",
    "read_yaml",
    "section",
    "task_needs",
    "to_container",
    "to_yaml",
    "unknown_key",
    "valid_keys",
]
