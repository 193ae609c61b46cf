"""The ``vectors`` table: every channel's rows, each a float32 vector or a packed record.

A row's id is never reused (AUTOINCREMENT), so a re-embedded image gets new ids and a
derived index catches up by comparing id sets.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Sequence

import numpy as np

from lookalike.storage.database import Database


class VectorRepository:
    """Reading and writing the rows of each channel."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def max_id(self) -> int:
        """The highest vector id ever handed out (AUTOINCREMENT never goes below it)."""
        return self.db.sequence("vectors")

    def ids(self, channel: str) -> tuple[np.ndarray, np.ndarray]:
        """(vector ids, their image ids) of a channel, in id order."""
        rows = self.db.conn.execute(
            "SELECT id, image_id FROM vectors WHERE channel = ? ORDER BY id", (channel,)
        ).fetchall()
        table = np.asarray(rows, dtype=np.int64).reshape(-1, 2)
        return table[:, 0].copy(), table[:, 1].copy()

    def ids_of_images(self, channel: str, image_ids: Iterable[int]) -> list[int]:
        """The vector ids of a channel's rows of these images."""
        rows = self.db.select_in("SELECT id FROM vectors WHERE channel = ? AND image_id IN "
                                 "({marks})", (int(i) for i in image_ids), leading=[channel])
        return sorted(row[0] for row in rows)

    def exists(self, vector_id: int, channel: str) -> bool:
        return self.db.one("SELECT 1 FROM vectors WHERE id = ? AND channel = ?",
                           (vector_id, channel)) is not None

    def blobs(self, ids: Sequence[int], channel: str | None = None
              ) -> list[tuple[int, int, bytes]]:
        """(vector id, image id, blob) of the given vector ids (of ``channel`` only, when
        given), in id order."""
        if channel is None:
            return sorted(self.db.select_in("SELECT id, image_id, vector FROM vectors WHERE id "
                                            "IN ({marks})", (int(i) for i in ids)))
        return sorted(self.db.select_in("SELECT id, image_id, vector FROM vectors WHERE "
                                        "channel = ? AND id IN ({marks})", (int(i) for i in ids),
                                        leading=[channel]))

    def load(self, channel: str, dim: int, ids: Sequence[int] | None = None
             ) -> tuple[np.ndarray, np.ndarray]:
        """(vector ids, (n, dim) float32 matrix) for ``ids``, or the whole channel, of rows
        stored as ``dim`` float32 values."""
        vector_ids, blobs = self.load_blobs(channel, ids)
        matrix = np.frombuffer(b"".join(blobs), dtype=np.float32)
        return vector_ids, matrix.reshape(len(blobs), dim).copy()

    def load_blobs(self, channel: str, ids: Sequence[int] | None = None
                   ) -> tuple[np.ndarray, list[bytes]]:
        """(vector ids, their blobs in the same order) for ``ids``, or the whole channel."""
        if ids is None:
            rows = self.db.conn.execute(
                "SELECT id, vector FROM vectors WHERE channel = ? ORDER BY id", (channel,)
            ).fetchall()
        else:
            rows = sorted(self.db.select_in("SELECT id, vector FROM vectors WHERE id IN "
                                            "({marks})", (int(i) for i in ids)))
        vector_ids = np.fromiter((row[0] for row in rows), dtype=np.int64, count=len(rows))
        return vector_ids, [row[1] for row in rows]

    def of_images(self, channel: str, image_ids: Sequence[int]) -> dict[int, list[bytes]]:
        """Raw blobs of each image in a channel, in id order."""
        found: dict[int, list[bytes]] = {}
        rows = self.db.select_in(
            "SELECT id, image_id, vector FROM vectors WHERE channel = ? AND image_id IN ({marks})",
            (int(i) for i in image_ids), leading=[channel])
        for _, image_id, blob in sorted(rows):
            found.setdefault(image_id, []).append(blob)
        return found

    def count(self, channel: str) -> int:
        return int(self.db.value("SELECT COUNT(*) FROM vectors WHERE channel = ?", (channel,)))

    def count_images(self, channel: str) -> int:
        """How many images have at least one row in ``channel``."""
        return int(self.db.value("SELECT COUNT(DISTINCT image_id) FROM vectors WHERE "
                                 "channel = ?", (channel,)))

    def total_bytes(self, channel: str) -> int:
        return int(self.db.value("SELECT COALESCE(SUM(LENGTH(vector)), 0) FROM vectors "
                                 "WHERE channel = ?", (channel,)))

    # -- writing (inside a transaction) -----------------------------------------------------

    def rows_of_image(self, conn: sqlite3.Connection, channel: str, image_id: int
                      ) -> list[tuple[int, bytes]]:
        """(vector id, blob) of an image's rows in a channel, in id order."""
        return [(int(row[0]), row[1]) for row in conn.execute(
            "SELECT id, vector FROM vectors WHERE channel = ? AND image_id = ? ORDER BY id",
            (channel, image_id))]

    def rows_of_channel(self, conn: sqlite3.Connection, channel: str
                        ) -> list[tuple[int, bytes]]:
        """(image id, blob) of every row of ``channel``, in id order, as ``conn`` sees them
        (its own uncommitted writes included)."""
        return [(int(row[0]), row[1]) for row in conn.execute(
            "SELECT image_id, vector FROM vectors WHERE channel = ? ORDER BY id", (channel,))]

    def replace(self, conn: sqlite3.Connection, channel: str, image_id: int,
                blobs: Sequence[bytes]) -> list[int]:
        """Make ``blobs`` (each a vector, or a channel's packed record) the image's rows;
        returns their new ids, in order."""
        conn.execute("DELETE FROM vectors WHERE channel = ? AND image_id = ?", (channel, image_id))
        return [int(conn.execute("INSERT INTO vectors (channel, image_id, vector) VALUES "
                                 "(?, ?, ?) RETURNING id", (channel, image_id, blob)).fetchone()[0])
                for blob in blobs]

    def delete_channel(self, conn: sqlite3.Connection, channel: str) -> None:
        """Every row of one channel (a channel removed from its collection)."""
        conn.execute("DELETE FROM vectors WHERE channel = ?", (channel,))

    def delete_of_image(self, conn: sqlite3.Connection, image_id: int) -> None:
        """Drop every channel's rows of an image."""
        conn.execute("DELETE FROM vectors WHERE image_id = ?", (image_id,))
