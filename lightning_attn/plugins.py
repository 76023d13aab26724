"""Extensions from outside the package: modules imported at start-up, which register what they add.

A plugin module registers what it adds when it is imported — a mechanism with
``lightning_attn.attention.MECHANISMS.register``, a task with ``lightning_attn.tasks.TASKS.register``, a data
source with ``lightning_attn.data.DATA.register`` — so that it trains, sweeps and reports like a shipped one
without a file of the package changing. A name already taken (a shipped mechanism's, say) is refused in one
line naming both, unless the plugin passes ``override=True``. Two ways to name plugins, both read by every
entry point (the CLI, and each sweep worker, which inherits the environment):

* an installed distribution's entry points in the group ``lightning_attn.plugins`` (each one's value is the
  module to import), e.g. in its ``pyproject.toml``::

      [project.entry-points."lightning_attn.plugins"]
      my_task = "my_project.sorting"

* ``LIGHTNING_ATTN_PLUGINS``, comma-separated module names (for code that is not installed)::

      LIGHTNING_ATTN_PLUGINS=my_project.attention lightning-attn sweep my_sweep.yaml
"""

from __future__ import annotations

import importlib
import os
from importlib.metadata import entry_points

from .config import ConfigError
from .registry import RegistryError

ENV = "LIGHTNING_ATTN_PLUGINS"
GROUP = "lightning_attn.plugins"


def load_plugins() -> list[str]:
    """Import every plugin module (entry points of :data:`GROUP`, then ``$LIGHTNING_ATTN_PLUGINS``); their names.

    Raises:
        ConfigError: a plugin that cannot be imported, in one line naming it and where it was named.
    """
    named = [
        (ep.value.partition(":")[0].strip(), f"entry point {ep.name!r} ({GROUP})") for ep in entry_points(group=GROUP)
    ]
    named += [(n.strip(), ENV) for n in os.environ.get(ENV, "").split(",") if n.strip()]
    for name, where in named:
        try:
            importlib.import_module(name)
        except ImportError as e:
            raise ConfigError(f"{where}: cannot import plugin {name!r} ({e})") from None
        except RegistryError as e:
            raise ConfigError(f"{where}: plugin {name!r}: {e}") from None
    return [name for name, _ in named]
