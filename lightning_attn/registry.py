"""The one shape of every registry (mechanisms, models, data sources, tasks): a read-only mapping from name to
what the name builds, added to only through :meth:`Registry.register`, which refuses to replace an entry unless
told to (``override=True``) — so a plugin cannot silently take a shipped name, the way Lightning's
``StrategyRegistry.register(..., override=False)`` refuses it."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Generic, TypeVar

T = TypeVar("T")


class RegistryError(ValueError):
    """A name registered twice without ``override=True`` (one line, naming both)."""


class Registry(Mapping[str, T], Generic[T]):
    """Names of one kind (``what``: "attention mechanism", "task", …) and what each builds.

    Args:
        what: the kind of thing registered, as an error names it.
        entries: the shipped entries.
    """

    def __init__(self, what: str, entries: Mapping[str, T] | None = None):
        self.what = what
        self._entries: dict[str, T] = {}
        for name, entry in (entries or {}).items():
            self.register(name, entry)

    def register(self, name: str, entry: T, *, override: bool = False) -> T:
        """Add ``entry`` under ``name``; returns it.

        Raises:
            RegistryError: ``name`` is taken (by another entry) and ``override`` is False.
        """
        old = self._entries.get(name)
        if old is not None and old != entry and not override:
            raise RegistryError(
                f"{self.what} {name!r} is registered already by {source(old)}; {source(entry)} registers it "
                "again (register(..., override=True) replaces it)"
            )
        self._entries[name] = entry
        return entry

    def unregister(self, name: str) -> T:
        """Remove ``name``; returns what it named (``KeyError`` if nothing)."""
        return self._entries.pop(name)

    def __getitem__(self, name: str) -> T:
        return self._entries[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def __repr__(self) -> str:
        return f"Registry({self.what!r}, {sorted(self._entries)})"


def source(entry: object) -> str:
    """Where an entry comes from: its (first) class's module and name."""
    first = entry[0] if isinstance(entry, tuple) and entry else entry
    module = getattr(first, "__module__", None) or type(first).__module__
    name = getattr(first, "__qualname__", None) or type(first).__qualname__
    return f"{module}.{name}"
