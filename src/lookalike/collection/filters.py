"""Filters on search results: by category, folder and date.

A filter is applied to the candidates that the channels return, in SQL against the
catalog, so every kind of search (by image, by text, by both) filters the same way. The
date is when the photo was taken (EXIF), or the file's modification time when the file
does not say.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from lookalike.errors import expect
from lookalike.paths import catalog_key
from lookalike.storage import Catalog, ImageConditions


@dataclass(frozen=True)
class SearchFilter:
    """Keep only images in one of ``categories`` (case-insensitive), under ``folder``, and
    dated between ``date_from`` and ``date_to`` (inclusive days)."""

    categories: tuple[str, ...] = ()
    folder: str | None = None
    date_from: dt.date | None = None
    date_to: dt.date | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "categories", tuple(self.categories))
        expect(all(isinstance(c, str) and c.strip() for c in self.categories),
               f"expected non-empty category names, got {list(self.categories)!r}")
        for value in (self.date_from, self.date_to):
            expect(value is None or isinstance(value, dt.date),
                   f"expected a date, got {type(value).__name__}")
        if self.date_from and self.date_to:
            expect(self.date_from <= self.date_to,
                   f"expected date_from <= date_to, got {self.date_from} > {self.date_to}")

    @property
    def active(self) -> bool:
        return bool(self.categories or self.folder or self.date_from or self.date_to)

    def as_dict(self) -> dict[str, Any]:
        return {"categories": list(self.categories), "folder": self.folder,
                "date_from": self.date_from and self.date_from.isoformat(),
                "date_to": self.date_to and self.date_to.isoformat()}

    def allowed(self, catalog: Catalog, image_ids: Iterable[int]) -> set[int]:
        """The subset of ``image_ids`` that passes every condition."""
        wanted = [int(i) for i in image_ids]
        if not self.active:
            return set(wanted)
        return catalog.images.passing(self._conditions(), wanted)

    def count(self, catalog: Catalog) -> int:
        """How many indexed images pass the filter."""
        return catalog.images.count_passing(self._conditions())

    def _conditions(self) -> ImageConditions:
        return ImageConditions(categories=self.categories,
                               folder=catalog_key(self.folder) if self.folder else None,
                               date_from=self.date_from, date_to=self.date_to)
