"""Extensions from outside the package: ``LIGHTNING_ATTN_PLUGINS`` names modules to import at start-up.

A plugin module registers what it adds — a mechanism in :data:`lightning_attn.attention.MECHANISMS`, a
task in :data:`lightning_attn.tasks.TASKS` — when it is imported. Every entry point imports the plugins
first (the CLI and each sweep worker, which inherits the variable), so a mechanism of your own trains,
sweeps and reports like a shipped one without a file of the package changing::

    LIGHTNING_ATTN_PLUGINS=my_project.attention lightning-attn sweep my_sweep.yaml
"""

from __future__ import annotations

import importlib
import os

from .config import ConfigError

ENV = "LIGHTNING_ATTN_PLUGINS"


def load_plugins() -> list[str]:
    """Import every module named (comma-separated) in ``$LIGHTNING_ATTN_PLUGINS``; their names."""
    names = [n.strip() for n in os.environ.get(ENV, "").split(",") if n.strip()]
    for name in names:
        try:
            importlib.import_module(name)
        except ImportError as e:
            raise ConfigError(f"{ENV}: cannot import plugin {name!r} ({e})") from None
    return names
