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

from lookalike.collection.catalog import Catalog, folder_range
from lookalike.errors import expect
from lookalike.paths import catalog_key

_DATE_OF_IMAGE = (
    "COALESCE((SELECT a.text FROM annotations a WHERE a.image_id = images.id AND "
    "a.kind = 'taken' LIMIT 1), strftime('%Y-%m-%dT%H:%M:%S', images.mtime_ns / 1e9, "
    "'unixepoch'))")


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
        conditions, params = self._conditions()
        query = (f"SELECT images.id FROM images WHERE {' AND '.join(conditions)} "
                 "AND images.id IN ({marks})")
        return {row[0] for row in catalog.select_in(query, wanted, leading=params)}

    def count(self, catalog: Catalog) -> int:
        """How many indexed images pass the filter."""
        conditions, params = self._conditions()
        row = catalog.conn.execute(
            f"SELECT COUNT(*) FROM images WHERE {' AND '.join(conditions)}", params).fetchone()
        return int(row[0])

    def _conditions(self) -> tuple[list[str], list[Any]]:
        conditions: list[str] = ["images.status = 'indexed'"]
        params: list[Any] = []
        if self.categories:
            marks = ",".join("?" * len(self.categories))
            conditions.append(
                "EXISTS (SELECT 1 FROM annotations c WHERE c.image_id = images.id AND "
                f"c.kind = 'category' AND casefold(c.text) IN ({marks}))")
            params += [c.strip().casefold() for c in self.categories]
        if self.folder:
            conditions.append("images.path >= ? AND images.path < ?")
            params += folder_range(catalog_key(self.folder))
        if self.date_from:
            conditions.append(f"{_DATE_OF_IMAGE} >= ?")
            params.append(self.date_from.isoformat())
        if self.date_to:
            conditions.append(f"{_DATE_OF_IMAGE} < ?")
            params.append((self.date_to + dt.timedelta(days=1)).isoformat())
        return conditions, params
