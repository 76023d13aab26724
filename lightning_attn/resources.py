"""Where the shipped YAML lives: ``conf/`` and ``sweeps/``.

In a source checkout (or an editable install) they sit at the repository root; a wheel carries
them inside the package (see ``pyproject.toml``). ``LIGHTNING_ATTN_CONF`` points elsewhere.
"""

from __future__ import annotations

import os
from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent


def _find(name: str) -> Path:
    for candidate in (_PACKAGE / name, _PACKAGE.parent / name):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(f"cannot find the {name}/ folder next to {_PACKAGE}; is the package installed correctly?")


def conf_dir() -> Path:
    """The config folder (``$LIGHTNING_ATTN_CONF`` if set)."""
    override = os.environ.get("LIGHTNING_ATTN_CONF")
    return Path(override) if override else _find("conf")


def sweeps_dir() -> Path:
    return _find("sweeps")
