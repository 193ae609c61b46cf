"""Copying part of a catalog into a new one: what splitting a collection into shards needs.

The rows keep their ids, so an image, a vector or a person has the same id in its shard as
in the collection it came from, and ids stay unique across the shards of one collection:
each shard's AUTOINCREMENT sequences start at its own floor, so the images a shard adds
later never take an id another shard uses.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path

from lookalike.errors import CollectionError
from lookalike.storage.database import Database

#: The tables copied, in an order that respects their foreign keys; each keeps the rows of
#: the images kept (people: those with a face, or a rejected face, among them).
_COPIES = (
    ("images", "SELECT * FROM src.images WHERE keep_path(path)"),
    ("vectors", "SELECT * FROM src.vectors WHERE image_id IN (SELECT id FROM main.images)"),
    ("image_channels", "SELECT * FROM src.image_channels WHERE image_id IN "
                       "(SELECT id FROM main.images)"),
    ("annotations", "SELECT * FROM src.annotations WHERE image_id IN "
                    "(SELECT id FROM main.images)"),
    ("people", "SELECT * FROM src.people WHERE id IN (SELECT person_id FROM src.face_people "
               "WHERE face_id IN (SELECT id FROM main.vectors)) OR id IN (SELECT person_id "
               "FROM src.face_rejections WHERE face_id IN (SELECT id FROM main.vectors)) "
               "OR (keep_faceless() AND id NOT IN (SELECT person_id FROM src.face_people) "
               "AND id NOT IN (SELECT person_id FROM src.face_rejections))"),
    ("face_people", "SELECT * FROM src.face_people WHERE face_id IN "
                    "(SELECT id FROM main.vectors)"),
    ("face_rejections", "SELECT * FROM src.face_rejections WHERE face_id IN "
                        "(SELECT id FROM main.vectors)"),
)
_SEQUENCED = ("images", "vectors", "annotations", "people")


def highest_id(db: Database) -> int:
    """The highest id any table whose ids a shard keeps ever gave."""
    return max(db.sequence(table) for table in _SEQUENCED)


def copy_catalog_part(source: Path, target: Path, keep: Callable[[str], bool],
                      id_floor: int, *, faceless_people: bool = False) -> int:
    """Make ``target`` a new catalog holding the images of ``source`` whose path ``keep``
    accepts, with their vectors, channel marks, annotations and people, and the catalog's
    meta entries (the vocabulary tree's and the projection's ids; not its own id), and with
    ``faceless_people`` the people who have no face (named, their faces since removed). Ids
    the target gives from now on start above ``id_floor``. Returns the images copied. The
    search and click log is not copied: it belongs to the collection that was searched."""
    if target.exists():
        raise CollectionError(f"{target}: expected a new catalog, got an existing file")
    database = Database(target).open()
    try:
        conn = database.conn
        conn.create_function("keep_path", 1, lambda path: bool(keep(path)),
                             deterministic=True)
        conn.create_function("keep_faceless", 0, lambda: faceless_people, deterministic=True)
        conn.execute("ATTACH DATABASE ? AS src", (str(source),))
        with database.transaction() as write:
            for table, select in _COPIES:
                write.execute(f"INSERT INTO main.{table} {select}")
            write.execute("INSERT OR REPLACE INTO main.meta SELECT * FROM src.meta "
                          "WHERE key != 'catalog_id'")
            for table in _SEQUENCED:
                _raise_sequence(write, table, id_floor)
            copied = int(write.execute("SELECT COUNT(*) FROM main.images").fetchone()[0])
        conn.execute("DETACH DATABASE src")
    except sqlite3.Error as error:
        raise CollectionError(f"{target}: cannot copy from {source} ({error})") from error
    finally:
        database.close()
    return copied


def _raise_sequence(conn: sqlite3.Connection, table: str, floor: int) -> None:
    updated = conn.execute("UPDATE sqlite_sequence SET seq = MAX(seq, ?) WHERE name = ?",
                           (floor, table)).rowcount
    if not updated:
        conn.execute("INSERT INTO sqlite_sequence (name, seq) VALUES (?, ?)", (table, floor))
