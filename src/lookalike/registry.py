"""One registry shape for everything Lookalike builds by name.

Extractors, index backends, data sets, channels, face detectors, face embedders, object
detectors, clustering algorithms and model exporters are each a :class:`Registry`: a
name-to-entry table with the same errors everywhere ("expected a face detector among
['blazeface', 'centerface'], got 'mtcnn'"), a decorator to add entries, and optional
discovery of entries that other packages declare as entry points (the group is
``lookalike.<plural>``, e.g. ``lookalike.extractors``), so a plug-in needs no change here.
"""

from __future__ import annotations

import threading
import warnings
from collections.abc import Callable, Iterator
from importlib import metadata
from typing import Generic, TypeVar

from lookalike.errors import ValidationError

T = TypeVar("T")
E = TypeVar("E")


class Registry(Generic[T]):
    """Entries of one kind, by name.

    ``kind`` names an entry in errors ("face detector"); ``group`` is the entry-point
    group searched for plug-ins the first time a name is missing or the names are
    listed (None: built-in entries only); ``check(name, entry)`` refuses a bad entry
    with a :class:`ValidationError`, a built-in's or a plug-in's alike.
    """

    def __init__(self, kind: str, *, group: str | None = None,
                 check: Callable[[str, T], None] | None = None) -> None:
        self.kind = kind
        self.group = group
        self.check = check
        self._entries: dict[str, T] = {}
        self._discovered = group is None
        self._lock = threading.Lock()

    # -- adding -------------------------------------------------------------------------------

    def add(self, name: str, entry: T) -> T:
        """Register ``entry`` under ``name``; a name is never silently given to another entry."""
        if not isinstance(name, str) or not name:
            raise ValidationError(f"expected a non-empty name for the {self.kind}, got {name!r}")
        existing = self._entries.get(name)
        if existing is not None and existing is not entry:
            raise ValidationError(f"expected a new {self.kind} name, got {name!r}, which is "
                                  "already registered")
        if self.check is not None:
            self.check(name, entry)
        self._entries[name] = entry
        return entry

    def register(self, name: str) -> Callable[[E], E]:
        """Decorator: ``@REGISTRY.register("name")`` over a class or a factory."""

        def decorate(entry: E) -> E:
            self.add(name, entry)  # type: ignore[arg-type]
            return entry

        return decorate

    def remove(self, name: str) -> T:
        """Take an entry out again (a test's own entry, a plug-in being unloaded)."""
        return self._entries.pop(name) if name in self._entries else self.get(name)

    # -- reading ------------------------------------------------------------------------------

    def get(self, name: str) -> T:
        """The entry registered as ``name``; a clear error listing the names otherwise."""
        if isinstance(name, str) and name in self._entries:
            return self._entries[name]
        self._discover()
        if isinstance(name, str) and name in self._entries:
            return self._entries[name]
        raise ValidationError(f"expected {_article(self.kind)} {self.kind} among "
                              f"{self.names()}, got {name!r}")

    def names(self) -> list[str]:
        """Every registered name, sorted."""
        self._discover()
        return sorted(self._entries)

    def items(self) -> list[tuple[str, T]]:
        """(name, entry) pairs in the order they were registered."""
        self._discover()
        return list(self._entries.items())

    def __getitem__(self, name: str) -> T:
        return self.get(name)

    def __contains__(self, name: object) -> bool:
        if name in self._entries:
            return True
        self._discover()
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        self._discover()
        return iter(list(self._entries))

    def __len__(self) -> int:
        self._discover()
        return len(self._entries)

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}, {sorted(self._entries)})"

    # -- plug-ins -----------------------------------------------------------------------------

    def _discover(self) -> None:
        """Load the entry points of ``group`` once. A plug-in that fails to load is skipped
        with a warning that names it: one broken package must not break every command."""
        if self._discovered:
            return
        with self._lock:
            if self._discovered:
                return
            self._discovered = True
            for point in metadata.entry_points(group=self.group or ""):
                if point.name in self._entries:
                    continue  # a plug-in never takes a built-in's name
                try:
                    entry = point.load()
                    if self.check is not None:
                        self.check(point.name, entry)
                except Exception as error:  # a plug-in's own failure, whatever it is
                    warnings.warn(f"{self.kind} plug-in {point.name!r} ({point.value}) could "
                                  f"not be loaded: {error}", RuntimeWarning, stacklevel=3)
                    continue
                self._entries[point.name] = entry


def _article(word: str) -> str:
    return "an" if word[:1].lower() in "aeio" else "a"
