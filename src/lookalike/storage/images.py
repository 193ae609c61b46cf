"""The ``images`` table: one row per file (or in-memory image), indexed or failed."""

from __future__ import annotations

import datetime as dt
import sqlite3
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from lookalike.storage.database import Database


@dataclass(frozen=True)
class ImageRecord:
    id: int
    path: str
    sha256: str | None
    size: int | None
    mtime_ns: int | None
    width: int | None
    height: int | None
    status: str
    error: str | None


@dataclass(frozen=True)
class ImageConditions:
    """What a search filter asks of an image: one of ``categories`` (compared case-folded),
    under ``folder`` (an absolute path), dated from ``date_from`` to ``date_to`` inclusive."""

    categories: tuple[str, ...] = ()
    folder: str | None = None
    date_from: dt.date | None = None
    date_to: dt.date | None = None


_COLUMNS = "id, path, sha256, size, mtime_ns, width, height, status, error"
# When the photo was taken (EXIF), else when the file was last modified.
_DATE_OF_IMAGE = (
    "COALESCE((SELECT a.text FROM annotations a WHERE a.image_id = images.id AND "
    "a.kind = 'taken' LIMIT 1), strftime('%Y-%m-%dT%H:%M:%S', images.mtime_ns / 1e9, "
    "'unixepoch'))")


def folder_range(folder: str) -> tuple[str, str]:
    """The (low, high) bounds of the paths inside ``folder``: ``low <= path < high``.

    A range scan on the unique path index, not LIKE, so '%' or '_' in names are literal;
    '0' is the character after '/'.
    """
    prefix = folder.rstrip("/") + "/"
    return prefix, prefix[:-1] + "0"


class ImageRepository:
    """Reading and writing image rows."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def by_path(self, paths: Iterable[str]) -> dict[str, ImageRecord]:
        rows = self.db.select_in(f"SELECT {_COLUMNS} FROM images WHERE path IN ({{marks}})",
                                 paths)
        return {record.path: record for record in (ImageRecord(*row) for row in rows)}

    def by_id(self, ids: Iterable[int]) -> dict[int, ImageRecord]:
        rows = self.db.select_in(f"SELECT {_COLUMNS} FROM images WHERE id IN ({{marks}})",
                                 (int(i) for i in ids))
        return {record.id: record for record in (ImageRecord(*row) for row in rows)}

    def all(self, status: str | None = None) -> list[ImageRecord]:
        query = f"SELECT {_COLUMNS} FROM images"
        params: tuple[str, ...] = ()
        if status is not None:
            query += " WHERE status = ?"
            params = (status,)
        return [ImageRecord(*row) for row in self.db.conn.execute(query + " ORDER BY id", params)]

    def paths_under(self, folder: str) -> list[str]:
        """Catalogued paths inside ``folder`` (an absolute path without trailing separator)."""
        rows = self.db.conn.execute("SELECT path FROM images WHERE path >= ? AND path < ?",
                                    folder_range(folder))
        return [row[0] for row in rows]

    def count(self, status: str | None = None) -> int:
        if status is None:
            return int(self.db.value("SELECT COUNT(*) FROM images"))
        return int(self.db.value("SELECT COUNT(*) FROM images WHERE status = ?", (status,)))

    # -- writing (inside a transaction) -----------------------------------------------------

    def upsert(
        self, conn: sqlite3.Connection, *, path: str, sha256: str | None, size: int | None,
        mtime_ns: int | None, width: int | None, height: int | None, status: str,
        error: str | None,
    ) -> int:
        conn.execute(
            "INSERT INTO images (path, sha256, size, mtime_ns, width, height, status, error,"
            " updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
            " ON CONFLICT(path) DO UPDATE SET sha256=excluded.sha256, size=excluded.size,"
            " mtime_ns=excluded.mtime_ns, width=excluded.width, height=excluded.height,"
            " status=excluded.status, error=excluded.error, updated_at=excluded.updated_at",
            (path, sha256, size, mtime_ns, width, height, status, error, time.time()),
        )
        (image_id,) = conn.execute("SELECT id FROM images WHERE path = ?", (path,)).fetchone()
        return int(image_id)

    def touch(self, conn: sqlite3.Connection, image_id: int, size: int, mtime_ns: int) -> None:
        conn.execute("UPDATE images SET size = ?, mtime_ns = ?, updated_at = ? WHERE id = ?",
                     (size, mtime_ns, time.time(), image_id))

    def delete(self, conn: sqlite3.Connection, ids: Sequence[int]) -> None:
        # Vectors and annotations go with their image through ON DELETE CASCADE.
        conn.executemany("DELETE FROM images WHERE id = ?", [(int(i),) for i in ids])

    # -- which channels each image has been through -----------------------------------------

    def channels_of(self, ids: Iterable[int]) -> dict[int, set[str]]:
        """image id -> the channels done with it."""
        found: dict[int, set[str]] = {}
        for image_id, channel in self.db.select_in(
                "SELECT image_id, channel FROM image_channels WHERE image_id IN ({marks})",
                (int(i) for i in ids)):
            found.setdefault(int(image_id), set()).add(str(channel))
        return found

    def mark(self, conn: sqlite3.Connection, image_id: int, channels: Sequence[str]) -> None:
        conn.executemany("INSERT OR IGNORE INTO image_channels (image_id, channel) VALUES (?, ?)",
                         [(image_id, channel) for channel in channels])

    def unmark(self, conn: sqlite3.Connection, image_id: int) -> None:
        conn.execute("DELETE FROM image_channels WHERE image_id = ?", (image_id,))

    def unmark_channel(self, conn: sqlite3.Connection, channel: str) -> None:
        """No image is done with ``channel`` any more (a channel removed)."""
        conn.execute("DELETE FROM image_channels WHERE channel = ?", (channel,))

    def mark_all_indexed(self, conn: sqlite3.Connection, channels: Sequence[str]) -> None:
        """Every indexed image done with ``channels`` (a schema 1 catalog, upgraded)."""
        for channel in channels:
            conn.execute("INSERT OR IGNORE INTO image_channels (image_id, channel) "
                         "SELECT id, ? FROM images WHERE status = 'indexed'", (channel,))

    # -- filtering --------------------------------------------------------------------------

    def passing(self, conditions: ImageConditions, ids: Iterable[int]) -> set[int]:
        """The subset of ``ids`` whose indexed images meet ``conditions``."""
        where, params = _where(conditions)
        query = f"SELECT images.id FROM images WHERE {where} AND images.id IN ({{marks}})"
        return {row[0] for row in self.db.select_in(query, [int(i) for i in ids],
                                                    leading=params)}

    def count_passing(self, conditions: ImageConditions) -> int:
        """How many indexed images meet ``conditions``."""
        where, params = _where(conditions)
        return int(self.db.value(f"SELECT COUNT(*) FROM images WHERE {where}", params))


def _where(conditions: ImageConditions) -> tuple[str, list[Any]]:
    clauses: list[str] = ["images.status = 'indexed'"]
    params: list[Any] = []
    if conditions.categories:
        marks = ",".join("?" * len(conditions.categories))
        clauses.append("EXISTS (SELECT 1 FROM annotations c WHERE c.image_id = images.id AND "
                       f"c.kind = 'category' AND casefold(c.text) IN ({marks}))")
        params += [c.strip().casefold() for c in conditions.categories]
    if conditions.folder:
        clauses.append("images.path >= ? AND images.path < ?")
        params += folder_range(conditions.folder)
    if conditions.date_from:
        clauses.append(f"{_DATE_OF_IMAGE} >= ?")
        params.append(conditions.date_from.isoformat())
    if conditions.date_to and conditions.date_to < dt.date.max:
        clauses.append(f"{_DATE_OF_IMAGE} < ?")
        params.append((conditions.date_to + dt.timedelta(days=1)).isoformat())
    elif conditions.date_to:  # the last day (no day after it): any image with a date
        clauses.append(f"{_DATE_OF_IMAGE} IS NOT NULL")
    return " AND ".join(clauses), params
