"""The ``annotations`` table and its change log: what is written about each image.

Every row has a kind (caption, tag, category, keyword, description, label, object,
taken) and a source (user, sidecar, embedded, imagenet, detector). Triggers append every
change to ``annotation_log``; the full-text index applies the log from its own revision.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from lookalike.storage.database import Database


@dataclass(frozen=True)
class AnnotationRecord:
    """One text about an image. ``score`` is a model's confidence (None for people's text)."""

    id: int
    image_id: int
    kind: str
    text: str
    score: float | None
    source: str

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.id, "kind": self.kind, "text": self.text,
                "score": None if self.score is None else round(self.score, 4),
                "source": self.source}


Row = tuple[str, str, float | None]  # kind, text, score
_COLUMNS = "id, image_id, kind, text, score, source"


class AnnotationRepository:
    """Reading and writing annotations."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def of_images(self, image_ids: Iterable[int]) -> dict[int, list[AnnotationRecord]]:
        """Each image's annotations, in the order they were added."""
        rows = self.db.select_in(f"SELECT {_COLUMNS} FROM annotations WHERE image_id IN "
                                 "({marks})", (int(i) for i in image_ids))
        found: dict[int, list[AnnotationRecord]] = {}
        for record in sorted((AnnotationRecord(*row) for row in rows), key=lambda r: r.id):
            found.setdefault(record.image_id, []).append(record)
        return found

    def get(self, annotation_id: int) -> AnnotationRecord | None:
        row = self.db.one(f"SELECT {_COLUMNS} FROM annotations WHERE id = ?", (annotation_id,))
        return None if row is None else AnnotationRecord(*row)

    def categories(self) -> list[tuple[str, int]]:
        """Every category and how many images have it, most used first; names that differ
        only in case are one."""
        rows = self.db.conn.execute(
            "SELECT MIN(text), COUNT(DISTINCT image_id) AS n FROM annotations WHERE "
            "kind = 'category' GROUP BY casefold(text) ORDER BY n DESC, casefold(text)")
        return [(str(text), int(n)) for text, n in rows]

    def counts(self) -> tuple[int, int]:
        """(annotations, images with at least one)."""
        row = self.db.one("SELECT COUNT(*), COUNT(DISTINCT image_id) FROM annotations")
        return (int(row[0]), int(row[1])) if row else (0, 0)

    def distinct_texts(self, kinds: Sequence[str]) -> list[str]:
        rows = self.db.conn.execute(
            f"SELECT DISTINCT text FROM annotations WHERE kind IN ({','.join('?' * len(kinds))})",
            list(kinds))
        return [row[0] for row in rows]

    def images_with_texts(self, texts: Iterable[str], kinds: Sequence[str]
                          ) -> list[tuple[int, str, float | None, str]]:
        """(image id, text, score, source) of every annotation whose text is one of ``texts``."""
        kind_marks = ",".join("?" * len(kinds))
        return [(int(row[0]), str(row[1]), row[2], str(row[3])) for row in self.db.select_in(
            f"SELECT image_id, text, score, source FROM annotations WHERE kind IN ({kind_marks}) "
            "AND text IN ({marks})", texts, leading=list(kinds))]

    # -- the change log ---------------------------------------------------------------------

    def revision(self) -> int:
        """The latest change to any image's text (0 when there was none)."""
        return self.db.sequence("annotation_log")

    def changed_since(self, revision: int) -> list[int]:
        """Images whose text changed (or that were removed) after ``revision``."""
        rows = self.db.conn.execute("SELECT DISTINCT image_id FROM annotation_log "
                                    "WHERE revision > ?", (revision,))
        return sorted(row[0] for row in rows)

    def annotated_images(self) -> list[int]:
        rows = self.db.conn.execute("SELECT DISTINCT image_id FROM annotations ORDER BY image_id")
        return [row[0] for row in rows]

    def forget_log(self, up_to: int) -> None:
        """Drop log entries a derived index has applied; it keeps the revision it reached."""
        with self.db.transaction() as conn:
            conn.execute("DELETE FROM annotation_log WHERE revision <= ?", (up_to,))

    # -- writing (inside a transaction) -----------------------------------------------------

    def replace(self, conn: sqlite3.Connection, image_id: int, source: str,
                items: Iterable[Row], kinds: Sequence[str] | None = None) -> None:
        """Make ``items`` (kind, text, score) the image's annotations from ``source``
        (of ``kinds`` only, when given); the image's other text is left alone."""
        query = "DELETE FROM annotations WHERE image_id = ? AND source = ?"
        params: list[Any] = [image_id, source]
        if kinds is not None:
            query += f" AND kind IN ({','.join('?' * len(kinds))})"
            params += list(kinds)
        conn.execute(query, params)
        conn.executemany(
            "INSERT INTO annotations (image_id, kind, text, score, source) VALUES (?, ?, ?, ?, ?)",
            [(image_id, kind, text, score, source) for kind, text, score in items])

    def delete_sources(self, conn: sqlite3.Connection, image_id: int,
                       sources: Sequence[str]) -> None:
        conn.execute(f"DELETE FROM annotations WHERE image_id = ? AND source IN "
                     f"({','.join('?' * len(sources))})", [image_id, *sources])

    def add(self, conn: sqlite3.Connection, image_id: int, kind: str, text: str,
            score: float | None, source: str) -> int:
        cursor = conn.execute(
            "INSERT INTO annotations (image_id, kind, text, score, source) VALUES (?, ?, ?, ?, ?)",
            (image_id, kind, text, score, source))
        return int(cursor.lastrowid or 0)

    def delete(self, conn: sqlite3.Connection, annotation_id: int) -> None:
        conn.execute("DELETE FROM annotations WHERE id = ?", (annotation_id,))
