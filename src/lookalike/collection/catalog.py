"""The SQLite catalog: one row per image, one row per stored vector.

SQLite in WAL mode is the collection's source of truth. Every batch of indexing
work is one transaction, so a crash or ``kill -9`` at any point leaves the last
committed state intact, and the next run simply carries on. Search structures
(vector indexes) are caches derived from these tables.

People (faces grouped by the user and by clustering) live in ``people``,
``face_people`` and ``face_rejections``; a face is a vector id, so removing or
re-embedding an image drops its faces' assignments with it (ON DELETE CASCADE).

Annotations (captions, tags, categories, keywords, automatic labels) live in
``annotations``, one row per text, tagged with where it came from. Triggers log every
change to an image's text in ``annotation_log``, in the same transaction, so the
full-text index (a derived cache) catches up by reading the log from its last
revision, and a crash can never leave it believing it is current when it is not.

Vectors live in one table for every channel. A vector's id is never reused
(AUTOINCREMENT), so a re-embedded image gets a new id and derived indexes can
be brought up to date by comparing id sets.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from lookalike.errors import CollectionError

SCHEMA_VERSION = 1
_IN_CHUNK = 500  # values per IN (...) list, well below SQLite's bound-parameter limit

_SCHEMA = """
CREATE TABLE IF NOT EXISTS images (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    path TEXT NOT NULL UNIQUE,
    sha256 TEXT,
    size INTEGER,
    mtime_ns INTEGER,
    width INTEGER,
    height INTEGER,
    status TEXT NOT NULL CHECK (status IN ('indexed', 'failed')),
    error TEXT,
    updated_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS vectors (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    channel TEXT NOT NULL,
    image_id INTEGER NOT NULL REFERENCES images(id) ON DELETE CASCADE,
    vector BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS vectors_by_image ON vectors(image_id);
CREATE INDEX IF NOT EXISTS vectors_by_channel ON vectors(channel, id);
CREATE TABLE IF NOT EXISTS meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
INSERT OR IGNORE INTO meta (key, value) VALUES ('catalog_id', lower(hex(randomblob(16))));
CREATE TABLE IF NOT EXISTS people (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT,
    created_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS face_people (
    face_id INTEGER PRIMARY KEY REFERENCES vectors(id) ON DELETE CASCADE,
    person_id INTEGER NOT NULL REFERENCES people(id) ON DELETE CASCADE,
    confirmed INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS face_people_by_person ON face_people(person_id);
CREATE TABLE IF NOT EXISTS face_rejections (
    face_id INTEGER NOT NULL REFERENCES vectors(id) ON DELETE CASCADE,
    person_id INTEGER NOT NULL REFERENCES people(id) ON DELETE CASCADE,
    PRIMARY KEY (face_id, person_id)
);
CREATE TABLE IF NOT EXISTS annotations (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    image_id INTEGER NOT NULL REFERENCES images(id) ON DELETE CASCADE,
    kind TEXT NOT NULL,
    text TEXT NOT NULL,
    score REAL,
    source TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS annotations_by_image ON annotations(image_id, source);
CREATE INDEX IF NOT EXISTS annotations_by_text ON annotations(text);
CREATE TABLE IF NOT EXISTS annotation_log (
    revision INTEGER PRIMARY KEY AUTOINCREMENT,
    image_id INTEGER NOT NULL
);
CREATE TRIGGER IF NOT EXISTS annotation_added AFTER INSERT ON annotations
    BEGIN INSERT INTO annotation_log (image_id) VALUES (NEW.image_id); END;
CREATE TRIGGER IF NOT EXISTS annotation_removed AFTER DELETE ON annotations
    BEGIN INSERT INTO annotation_log (image_id) VALUES (OLD.image_id); END;
CREATE TRIGGER IF NOT EXISTS annotation_changed AFTER UPDATE ON annotations
    BEGIN INSERT INTO annotation_log (image_id) VALUES (NEW.image_id); END;
CREATE TRIGGER IF NOT EXISTS image_removed AFTER DELETE ON images
    BEGIN INSERT INTO annotation_log (image_id) VALUES (OLD.id); END;
CREATE TABLE IF NOT EXISTS search_log (
    id TEXT PRIMARY KEY,
    created_at REAL NOT NULL,
    rankings TEXT NOT NULL,
    shown TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS clicks (
    query_id TEXT NOT NULL REFERENCES search_log(id) ON DELETE CASCADE,
    image_id INTEGER NOT NULL,
    created_at REAL NOT NULL,
    PRIMARY KEY (query_id, image_id)
);
"""


# Where annotations come from: people ("user", "sidecar"), the file itself ("embedded"), or
# a model that looked at the pixels. The last two are redone whenever the file changes.
MODEL_SOURCES = ("imagenet", "detector")
FILE_SOURCES = ("embedded", *MODEL_SOURCES)


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


def folder_range(folder: str) -> tuple[str, str]:
    """The (low, high) bounds of the paths inside ``folder``: ``low <= path < high``.

    A range scan on the unique path index, not LIKE, so '%' or '_' in names are literal;
    '0' is the character after '/'.
    """
    prefix = folder.rstrip("/") + "/"
    return prefix, prefix[:-1] + "0"


def _casefold(text: str | None) -> str | None:
    return None if text is None else text.casefold()


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


_IMAGE_COLUMNS = "id, path, sha256, size, mtime_ns, width, height, status, error"


class Catalog:
    """A thin, typed layer over the collection's SQLite file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._conn: sqlite3.Connection | None = None

    def open(self) -> Catalog:
        if self._conn is not None:
            return self
        try:
            # isolation_level=None: we issue BEGIN/COMMIT ourselves, one per batch.
            conn = sqlite3.connect(
                self.path, timeout=30.0, isolation_level=None, check_same_thread=False
            )
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA foreign_keys=ON")
            # SQLite's lower() folds ASCII only; filters compare names as Python does.
            conn.create_function("casefold", 1, _casefold, deterministic=True)
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            if version not in (0, SCHEMA_VERSION):
                raise CollectionError(
                    f"{self.path}: expected catalog schema {SCHEMA_VERSION}, got {version}"
                )
            conn.executescript(_SCHEMA)
            conn.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
        except sqlite3.DatabaseError as error:
            raise CollectionError(f"{self.path}: not a usable catalog ({error})") from error
        self._conn = conn
        return self

    @property
    def catalog_id(self) -> str:
        """A random id fixed at creation: derived caches check they belong to this catalog."""
        row = self.conn.execute("SELECT value FROM meta WHERE key = 'catalog_id'").fetchone()
        return str(row[0])

    def max_vector_id(self) -> int:
        """The highest vector id ever handed out (AUTOINCREMENT never goes below it)."""
        row = self.conn.execute("SELECT seq FROM sqlite_sequence WHERE name = 'vectors'").fetchone()
        return int(row[0]) if row else 0

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    @property
    def conn(self) -> sqlite3.Connection:
        if self._conn is None:
            raise CollectionError(f"{self.path}: catalog is not open; call open() first")
        return self._conn

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One atomic unit of work: all of it is committed, or none of it."""
        conn = self.conn
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as error:
            raise CollectionError(f"{self.path}: cannot start a write ({error}); is another "
                                  "process writing to this collection?") from error
        try:
            yield conn
        except sqlite3.Error as error:
            conn.execute("ROLLBACK")
            raise CollectionError(f"{self.path}: write failed and was rolled back ({error})") \
                from error
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        try:
            conn.execute("COMMIT")
        except sqlite3.Error as error:
            conn.execute("ROLLBACK")
            raise CollectionError(f"{self.path}: commit failed ({error})") from error

    # -- images ---------------------------------------------------------------------------

    def select_in(
        self, query: str, values: Iterable[object], leading: Sequence[object] = ()
    ) -> Iterator[tuple[Any, ...]]:
        """Rows of ``query``, whose ``{marks}`` is an IN list, for any number of values.

        SQLite caps the number of bound parameters, so long lists go in chunks.
        """
        wanted = list(values)
        for start in range(0, len(wanted), _IN_CHUNK):
            chunk = wanted[start : start + _IN_CHUNK]
            yield from self.conn.execute(
                query.format(marks=",".join("?" * len(chunk))), [*leading, *chunk]
            )

    def images_by_path(self, paths: Iterable[str]) -> dict[str, ImageRecord]:
        rows = self.select_in(f"SELECT {_IMAGE_COLUMNS} FROM images WHERE path IN ({{marks}})",
                               paths)
        return {record.path: record for record in (ImageRecord(*row) for row in rows)}

    def images_by_id(self, ids: Iterable[int]) -> dict[int, ImageRecord]:
        rows = self.select_in(f"SELECT {_IMAGE_COLUMNS} FROM images WHERE id IN ({{marks}})",
                               (int(i) for i in ids))
        return {record.id: record for record in (ImageRecord(*row) for row in rows)}

    def all_images(self, status: str | None = None) -> list[ImageRecord]:
        query = f"SELECT {_IMAGE_COLUMNS} FROM images"
        params: tuple[str, ...] = ()
        if status is not None:
            query += " WHERE status = ?"
            params = (status,)
        return [ImageRecord(*row) for row in self.conn.execute(query + " ORDER BY id", params)]

    def paths_under(self, folder: str) -> list[str]:
        """Catalogued paths inside ``folder`` (an absolute path without trailing separator)."""
        rows = self.conn.execute("SELECT path FROM images WHERE path >= ? AND path < ?",
                                 folder_range(folder))
        return [row[0] for row in rows]

    def upsert_image(
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

    def touch_image(
        self, conn: sqlite3.Connection, image_id: int, size: int, mtime_ns: int
    ) -> None:
        conn.execute(
            "UPDATE images SET size = ?, mtime_ns = ?, updated_at = ? WHERE id = ?",
            (size, mtime_ns, time.time(), image_id),
        )

    def delete_images(self, conn: sqlite3.Connection, ids: Sequence[int]) -> None:
        # Vectors go with their image through ON DELETE CASCADE.
        conn.executemany("DELETE FROM images WHERE id = ?", [(int(i),) for i in ids])

    # -- vectors --------------------------------------------------------------------------

    def delete_vectors(self, conn: sqlite3.Connection, image_id: int) -> None:
        conn.execute("DELETE FROM vectors WHERE image_id = ?", (image_id,))

    def replace_vectors(
        self, conn: sqlite3.Connection, channel: str, image_id: int, blobs: Sequence[bytes]
    ) -> None:
        """Make ``blobs`` (each a vector, or a channel's packed record) the image's rows."""
        conn.execute("DELETE FROM vectors WHERE channel = ? AND image_id = ?", (channel, image_id))
        conn.executemany(
            "INSERT INTO vectors (channel, image_id, vector) VALUES (?, ?, ?)",
            [(channel, image_id, blob) for blob in blobs],
        )

    def blobs(self, ids: Sequence[int], channel: str | None = None
              ) -> list[tuple[int, int, bytes]]:
        """(vector id, image id, blob) of the given vector ids (of ``channel`` only, when
        given), in id order."""
        if channel is None:
            return sorted(self.select_in("SELECT id, image_id, vector FROM vectors WHERE id IN "
                                         "({marks})", (int(i) for i in ids)))
        return sorted(self.select_in("SELECT id, image_id, vector FROM vectors WHERE channel = ? "
                                     "AND id IN ({marks})", (int(i) for i in ids),
                                     leading=[channel]))

    def blob_bytes(self, channel: str) -> int:
        row = self.conn.execute("SELECT COALESCE(SUM(LENGTH(vector)), 0) FROM vectors "
                                "WHERE channel = ?", (channel,)).fetchone()
        return int(row[0])

    def meta(self, key: str) -> str | None:
        row = self.conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def set_meta(self, key: str, value: str) -> None:
        with self.transaction() as conn:
            conn.execute("INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT(key) "
                         "DO UPDATE SET value = excluded.value", (key, value))

    def vector_ids(self, channel: str) -> tuple[np.ndarray, np.ndarray]:
        """(vector ids, their image ids) of a channel, in id order."""
        rows = self.conn.execute(
            "SELECT id, image_id FROM vectors WHERE channel = ? ORDER BY id", (channel,)
        ).fetchall()
        table = np.asarray(rows, dtype=np.int64).reshape(-1, 2)
        return table[:, 0].copy(), table[:, 1].copy()

    def load_vectors(
        self, channel: str, dim: int, ids: Sequence[int] | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """(vector ids, (n, dim) float32 matrix) for ``ids``, or the whole channel."""
        if ids is None:
            rows = self.conn.execute(
                "SELECT id, vector FROM vectors WHERE channel = ? ORDER BY id", (channel,)
            ).fetchall()
        else:
            rows = sorted(self.select_in("SELECT id, vector FROM vectors WHERE id IN ({marks})",
                                          (int(i) for i in ids)))
        vector_ids = np.fromiter((row[0] for row in rows), dtype=np.int64, count=len(rows))
        matrix = np.frombuffer(b"".join(row[1] for row in rows), dtype=np.float32)
        return vector_ids, matrix.reshape(len(rows), dim).copy()

    def vectors_of_images(self, channel: str, image_ids: Sequence[int]) -> dict[int, list[bytes]]:
        """Raw vector blobs of each image in a channel."""
        found: dict[int, list[bytes]] = {}
        rows = self.select_in(
            "SELECT id, image_id, vector FROM vectors WHERE channel = ? AND image_id IN ({marks})",
            (int(i) for i in image_ids), leading=[channel])
        for _, image_id, blob in sorted(rows):
            found.setdefault(image_id, []).append(blob)
        return found

    def count(self, status: str | None = None) -> int:
        if status is None:
            row = self.conn.execute("SELECT COUNT(*) FROM images").fetchone()
        else:
            row = self.conn.execute("SELECT COUNT(*) FROM images WHERE status = ?", (status,))
            row = row.fetchone()
        return int(row[0])

    def count_vectors(self, channel: str) -> int:
        row = self.conn.execute("SELECT COUNT(*) FROM vectors WHERE channel = ?", (channel,))
        return int(row.fetchone()[0])

    # -- annotations ----------------------------------------------------------------------

    def replace_annotations(
        self, conn: sqlite3.Connection, image_id: int, source: str,
        items: Iterable[tuple[str, str, float | None]], kinds: Sequence[str] | None = None,
    ) -> None:
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

    def delete_annotations(self, conn: sqlite3.Connection, image_id: int,
                           sources: Sequence[str]) -> None:
        conn.execute(f"DELETE FROM annotations WHERE image_id = ? AND source IN "
                     f"({','.join('?' * len(sources))})", [image_id, *sources])

    def add_annotation(self, conn: sqlite3.Connection, image_id: int, kind: str, text: str,
                       score: float | None, source: str) -> int:
        cursor = conn.execute(
            "INSERT INTO annotations (image_id, kind, text, score, source) VALUES (?, ?, ?, ?, ?)",
            (image_id, kind, text, score, source))
        return int(cursor.lastrowid or 0)

    def annotations_of(self, image_ids: Iterable[int]) -> dict[int, list[AnnotationRecord]]:
        """Each image's annotations, in the order they were added."""
        rows = self.select_in("SELECT id, image_id, kind, text, score, source FROM annotations "
                              "WHERE image_id IN ({marks})", (int(i) for i in image_ids))
        found: dict[int, list[AnnotationRecord]] = {}
        for record in sorted((AnnotationRecord(*row) for row in rows), key=lambda r: r.id):
            found.setdefault(record.image_id, []).append(record)
        return found

    def annotation(self, annotation_id: int) -> AnnotationRecord | None:
        row = self.conn.execute("SELECT id, image_id, kind, text, score, source FROM annotations "
                                "WHERE id = ?", (annotation_id,)).fetchone()
        return None if row is None else AnnotationRecord(*row)

    def annotation_revision(self) -> int:
        """The latest change to any image's text (0 when there was none)."""
        row = self.conn.execute(
            "SELECT seq FROM sqlite_sequence WHERE name = 'annotation_log'").fetchone()
        return int(row[0]) if row else 0

    def annotated_since(self, revision: int) -> list[int]:
        """Images whose text changed (or that were removed) after ``revision``."""
        rows = self.conn.execute("SELECT DISTINCT image_id FROM annotation_log "
                                 "WHERE revision > ?", (revision,))
        return sorted(row[0] for row in rows)

    def annotated_images(self) -> list[int]:
        rows = self.conn.execute("SELECT DISTINCT image_id FROM annotations ORDER BY image_id")
        return [row[0] for row in rows]

    def forget_annotation_log(self, up_to: int) -> None:
        """Drop log entries a derived index has applied; it keeps the revision it reached."""
        with self.transaction() as conn:
            conn.execute("DELETE FROM annotation_log WHERE revision <= ?", (up_to,))

    def distinct_texts(self, kinds: Sequence[str]) -> list[str]:
        rows = self.conn.execute(
            f"SELECT DISTINCT text FROM annotations WHERE kind IN ({','.join('?' * len(kinds))})",
            list(kinds))
        return [row[0] for row in rows]

    def images_with_texts(self, texts: Iterable[str], kinds: Sequence[str]
                          ) -> list[tuple[int, str, float | None, str]]:
        """(image id, text, score, source) of every annotation whose text is one of ``texts``."""
        kind_marks = ",".join("?" * len(kinds))
        return [(int(row[0]), str(row[1]), row[2], str(row[3])) for row in self.select_in(
            f"SELECT image_id, text, score, source FROM annotations WHERE kind IN ({kind_marks}) "
            "AND text IN ({marks})", texts, leading=list(kinds))]
