"""People: ``people`` (id, name), ``face_people`` (face, person, confirmed by the user) and
``face_rejections`` (face, person it must never join). A face is its vector id in the
faces channel, so an image's removal drops its faces' assignments (ON DELETE CASCADE).
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterable, Mapping, Sequence

from lookalike.storage.database import Database


class PeopleRepository:
    """Reading and writing people and their faces."""

    def __init__(self, db: Database) -> None:
        self.db = db

    # -- reading ----------------------------------------------------------------------------

    def listing(self, min_faces: int) -> list[tuple[int, str | None, int]]:
        """(id, name, faces) of the named people and the unnamed ones with at least
        ``min_faces`` faces: named first, then by size."""
        rows = self.db.conn.execute(
            "SELECT p.id, p.name, COUNT(f.face_id) AS n FROM people p "
            "LEFT JOIN face_people f ON f.person_id = p.id GROUP BY p.id "
            "HAVING n >= ? OR p.name IS NOT NULL "
            "ORDER BY p.name IS NULL, n DESC, p.id", (min_faces,)).fetchall()
        return [(int(pid), name, int(n)) for pid, name, n in rows]

    def get(self, person_id: int) -> tuple[str | None, int] | None:
        """(name, faces) of one person; None when there is no such person."""
        row = self.db.one("SELECT p.name, COUNT(f.face_id) FROM people p LEFT JOIN face_people f "
                          "ON f.person_id = p.id WHERE p.id = ? GROUP BY p.id", (person_id,))
        return None if row is None else (row[0], int(row[1]))

    def exists(self, person_id: int) -> bool:
        return self.db.one("SELECT 1 FROM people WHERE id = ?", (person_id,)) is not None

    def names(self, person_ids: Iterable[int]) -> dict[int, str | None]:
        return {int(pid): name for pid, name in self.db.select_in(
            "SELECT id, name FROM people WHERE id IN ({marks})", (int(i) for i in person_ids))}

    def faces_of(self, person_id: int, limit: int | None = None) -> list[tuple[int, bool]]:
        """(face id, confirmed) of a person's faces, confirmed first."""
        query = ("SELECT face_id, confirmed FROM face_people WHERE person_id = ? "
                 "ORDER BY confirmed DESC, face_id")
        params: list[int] = [person_id]
        if limit is not None:
            query += " LIMIT ?"
            params.append(limit)
        return [(int(f), bool(c)) for f, c in self.db.conn.execute(query, params)]

    def person_of_face(self, face_id: int) -> int | None:
        value = self.db.value("SELECT person_id FROM face_people WHERE face_id = ?", (face_id,))
        return None if value is None else int(value)

    def people_of(self, face_ids: Iterable[int]) -> dict[int, tuple[int, str | None]]:
        """face id -> (person id, name) for the faces that have a person."""
        rows = self.db.select_in(
            "SELECT f.face_id, p.id, p.name FROM face_people f JOIN people p "
            "ON p.id = f.person_id WHERE f.face_id IN ({marks})", (int(i) for i in face_ids))
        return {int(face_id): (int(pid), name) for face_id, pid, name in rows}

    def unassigned(self, channel: str) -> int:
        """Faces of ``channel`` with no person."""
        return int(self.db.value(
            "SELECT COUNT(*) FROM vectors v LEFT JOIN face_people f ON f.face_id = v.id "
            "WHERE v.channel = ? AND f.face_id IS NULL", (channel,)))

    # -- the user's decisions (inside a transaction) ----------------------------------------

    def new_person(self, conn: sqlite3.Connection) -> int:
        row = conn.execute("INSERT INTO people (name, created_at) VALUES (NULL, ?) RETURNING id",
                           (time.time(),)).fetchone()
        return int(row[0])

    def rename(self, conn: sqlite3.Connection, person_id: int, name: str | None) -> None:
        conn.execute("UPDATE people SET name = ? WHERE id = ?", (name, person_id))

    def merge(self, conn: sqlite3.Connection, target: int, others: Sequence[int],
              name: str | None) -> None:
        """Every face (and rejection) of ``others`` moves to ``target``, confirmed; the
        rejections among the merged faces no longer hold; ``others`` are deleted."""
        marks = ",".join("?" * len(others))
        conn.execute(f"UPDATE face_people SET person_id = ? WHERE person_id IN ({marks})",
                     (target, *others))
        conn.execute("UPDATE face_people SET confirmed = 1 WHERE person_id = ?", (target,))
        conn.execute(f"UPDATE OR IGNORE face_rejections SET person_id = ? "
                     f"WHERE person_id IN ({marks})", (target, *others))
        conn.execute("DELETE FROM face_rejections WHERE person_id = ? AND face_id IN "
                     "(SELECT face_id FROM face_people WHERE person_id = ?)", (target, target))
        conn.execute(f"DELETE FROM people WHERE id IN ({marks})", tuple(others))
        conn.execute("UPDATE people SET name = ? WHERE id = ?", (name, target))

    def move(self, conn: sqlite3.Connection, face_ids: Sequence[int], person_id: int) -> None:
        """Put faces that have a person into ``person_id``, confirmed."""
        conn.executemany("UPDATE face_people SET person_id = ?, confirmed = 1 WHERE face_id = ?",
                         [(person_id, f) for f in face_ids])

    def confirm_all(self, conn: sqlite3.Connection, person_ids: Iterable[int]) -> None:
        conn.executemany("UPDATE face_people SET confirmed = 1 WHERE person_id = ?",
                         [(pid,) for pid in person_ids])

    def assign(self, conn: sqlite3.Connection, face_id: int, person_id: int) -> None:
        """Put a face into a person, confirmed, lifting a rejection of that pairing."""
        conn.execute("DELETE FROM face_rejections WHERE face_id = ? AND person_id = ?",
                     (face_id, person_id))
        conn.execute("INSERT INTO face_people (face_id, person_id, confirmed) VALUES (?, ?, 1)"
                     " ON CONFLICT(face_id) DO UPDATE SET person_id = excluded.person_id, "
                     "confirmed = 1", (face_id, person_id))

    def reject(self, conn: sqlite3.Connection, left: Mapping[int, int]) -> None:
        """Take each face out of its person and record that it never goes back there."""
        for face_id, person_id in left.items():
            conn.execute("DELETE FROM face_people WHERE face_id = ?", (face_id,))
            conn.execute("INSERT OR IGNORE INTO face_rejections (face_id, person_id) "
                         "VALUES (?, ?)", (face_id, person_id))

    def hide(self, conn: sqlite3.Connection, face_ids: Sequence[int]) -> None:
        """"Not a face": out of its person, and out of people and face search for good."""
        conn.executemany("DELETE FROM face_people WHERE face_id = ?", [(f,) for f in face_ids])
        conn.executemany("INSERT OR IGNORE INTO face_hidden (face_id) VALUES (?)",
                         [(f,) for f in face_ids])

    def hidden(self) -> set[int]:
        return {int(f) for (f,) in self.db.conn.execute("SELECT face_id FROM face_hidden")}

    # -- clustering (inside a transaction) --------------------------------------------------

    def dissolve_unconfirmed(self, conn: sqlite3.Connection) -> None:
        """Unnamed people lose the faces the user did not place."""
        conn.execute("DELETE FROM face_people WHERE confirmed = 0 AND person_id IN "
                     "(SELECT id FROM people WHERE name IS NULL)")

    def drop_empty(self, conn: sqlite3.Connection) -> None:
        """Unnamed people without faces go (a named one stays, so its name is not lost)."""
        conn.execute("DELETE FROM people WHERE name IS NULL AND id NOT IN "
                     "(SELECT person_id FROM face_people)")

    def assignments(self, conn: sqlite3.Connection) -> dict[int, int]:
        """face id -> person id of every face that has a person."""
        return {int(f): int(p) for f, p in conn.execute(
            "SELECT face_id, person_id FROM face_people")}

    def rejections(self, conn: sqlite3.Connection) -> dict[int, set[int]]:
        """face id -> the people it must never join."""
        rejected: dict[int, set[int]] = {}
        for face_id, pid in conn.execute("SELECT face_id, person_id FROM face_rejections"):
            rejected.setdefault(int(face_id), set()).add(int(pid))
        return rejected

    def add_faces(self, conn: sqlite3.Connection, pairs: Iterable[tuple[int, int]]) -> None:
        """(face id, person id) assignments made by clustering (not confirmed)."""
        conn.executemany("INSERT INTO face_people (face_id, person_id) VALUES (?, ?)",
                         list(pairs))

    def count(self, conn: sqlite3.Connection) -> int:
        return int(conn.execute("SELECT COUNT(*) FROM people").fetchone()[0])

    # -- re-embedding an image (inside a transaction) ---------------------------------------

    def of_image(self, conn: sqlite3.Connection, channel: str, image_id: int
                 ) -> list[tuple[int, int | None, bool, list[int]]]:
        """(face id, person id, confirmed, rejected people) of an image's faces."""
        rows = conn.execute(
            "SELECT v.id, f.person_id, f.confirmed FROM vectors v LEFT JOIN face_people f "
            "ON f.face_id = v.id WHERE v.channel = ? AND v.image_id = ? ORDER BY v.id",
            (channel, image_id)).fetchall()
        banned: dict[int, list[int]] = {}
        for face_id, pid in conn.execute(
                "SELECT r.face_id, r.person_id FROM face_rejections r JOIN vectors v "
                "ON v.id = r.face_id WHERE v.channel = ? AND v.image_id = ?",
                (channel, image_id)):
            banned.setdefault(int(face_id), []).append(int(pid))
        return [(int(fid), None if pid is None else int(pid), bool(confirmed),
                 banned.get(int(fid), [])) for fid, pid, confirmed in rows]

    def carry(self, conn: sqlite3.Connection, face_id: int, person_id: int | None,
              confirmed: bool, rejected: Sequence[int]) -> None:
        """Give a new face the person, confirmation and rejections of the old face it is."""
        if person_id is not None:
            conn.execute("INSERT INTO face_people (face_id, person_id, confirmed) "
                         "VALUES (?, ?, ?)", (face_id, person_id, int(confirmed)))
        conn.executemany("INSERT OR IGNORE INTO face_rejections (face_id, person_id) "
                         "VALUES (?, ?)", [(face_id, banned) for banned in rejected])
