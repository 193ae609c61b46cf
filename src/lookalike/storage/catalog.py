"""The catalog: the collection's SQLite file, the source of truth, behind one connection.

Its repositories (images, vectors, annotations, people, feedback) share that connection
and its transactions; every SQL statement of Lookalike lives in this package, so another
backend (Postgres, for a shared deployment) has one place to go. Search structures
(vector indexes, inverted files, the full-text index) are caches derived from it.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from lookalike.storage.annotations import AnnotationRepository
from lookalike.storage.database import Database, Transaction
from lookalike.storage.feedback import FeedbackRepository
from lookalike.storage.images import ImageRepository
from lookalike.storage.lock import DEFAULT_WAIT, WriteLock
from lookalike.storage.people import PeopleRepository
from lookalike.storage.schema import MARKS_PENDING
from lookalike.storage.vectors import VectorRepository


class Catalog:
    """The catalog file and its repositories; :meth:`open` connects (creating the tables).

    Every logical write (:meth:`transaction`, :meth:`writing`) holds the collection's
    inter-process :class:`WriteLock`, waiting ``wait`` seconds at most for another process
    (None: as long as it takes). Reads never take it, nor do the writes that only keep a
    derived cache or the click log (SQLite makes those safe on its own).
    """

    def __init__(self, path: Path, *, wait: float | None = DEFAULT_WAIT) -> None:
        self.path = path
        self.wait = wait
        self.lock = WriteLock(path.parent / "write.lock")
        self.db = Database(path)
        self.images = ImageRepository(self.db)
        self.vectors = VectorRepository(self.db)
        self.annotations = AnnotationRepository(self.db)
        self.people = PeopleRepository(self.db)
        self.feedback = FeedbackRepository(self.db)

    def open(self) -> Catalog:
        if self.db.needs_setup():
            # Two processes creating one collection would otherwise both switch the new file
            # to WAL and create its tables, and one of them would find it locked.
            with self.lock.held("creating the catalog", wait=self.wait):
                self.db.open()
        else:
            self.db.open()  # readers never take the lock
        return self

    def close(self) -> None:
        self.db.close()

    @contextmanager
    def transaction(self) -> Iterator[Transaction]:
        """One atomic unit of work: all of it is committed, or none of it; under the lock."""
        with self.lock.held("editing", wait=self.wait), self.db.transaction() as conn:
            yield conn

    @contextmanager
    def writing(self, doing: str) -> Iterator[None]:
        """Hold the write lock for a run of transactions (an indexing run)."""
        with self.lock.held(doing, wait=self.wait):
            yield

    @property
    def catalog_id(self) -> str:
        """A random id fixed at creation: derived caches check they belong to this catalog."""
        return str(self.db.meta("catalog_id"))

    def meta(self, key: str) -> str | None:
        return self.db.meta(key)

    def fill_marks(self, channels: Sequence[str]) -> None:
        """Finish upgrading a schema 1 catalog: every indexed image went through every
        channel of its collection (``channels``), as indexing then always did."""
        if self.meta(MARKS_PENDING) is None:
            return
        with self.transaction() as conn:
            self.images.mark_all_indexed(conn, channels)
            conn.execute("DELETE FROM meta WHERE key = ?", (MARKS_PENDING,))

    @staticmethod
    def put_meta(conn: Transaction, key: str, value: str) -> None:
        """Write a meta entry inside the open transaction ``conn``: it commits with the
        rows it describes, or not at all."""
        conn.execute("INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT(key) "
                     "DO UPDATE SET value = excluded.value", (key, value))

    @staticmethod
    def drop_meta(conn: Transaction, prefix: str, keys: Sequence[str] = ()) -> None:
        """Delete the meta entries whose key starts with ``prefix``, and ``keys``."""
        conn.execute("DELETE FROM meta WHERE key LIKE ? ESCAPE '\\'",
                     (prefix.replace("%", "\\%").replace("_", "\\_") + "%",))
        conn.executemany("DELETE FROM meta WHERE key = ?", [(key,) for key in keys])

    def set_meta(self, key: str, value: str, *, locked: bool = True) -> None:
        """Write a meta entry; ``locked=False`` for a derived cache's own bookkeeping."""
        if not locked:
            self.db.set_meta(key, value)
            return
        with self.lock.held("editing", wait=self.wait):
            self.db.set_meta(key, value)
