"""The catalog: the collection's SQLite file, the source of truth, behind one connection.

Its repositories (images, vectors, annotations, people, feedback) share that connection
and its transactions; every SQL statement of Lookalike lives in this package, so another
backend (Postgres, for a shared deployment) has one place to go. Search structures
(vector indexes, inverted files, the full-text index) are caches derived from it.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from lookalike.storage.annotations import AnnotationRepository
from lookalike.storage.database import Database
from lookalike.storage.feedback import FeedbackRepository
from lookalike.storage.images import ImageRepository
from lookalike.storage.people import PeopleRepository
from lookalike.storage.vectors import VectorRepository


class Catalog:
    """The catalog file and its repositories; :meth:`open` connects (creating the tables)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.db = Database(path)
        self.images = ImageRepository(self.db)
        self.vectors = VectorRepository(self.db)
        self.annotations = AnnotationRepository(self.db)
        self.people = PeopleRepository(self.db)
        self.feedback = FeedbackRepository(self.db)

    def open(self) -> Catalog:
        self.db.open()
        return self

    def close(self) -> None:
        self.db.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One atomic unit of work: all of it is committed, or none of it."""
        with self.db.transaction() as conn:
            yield conn

    @property
    def catalog_id(self) -> str:
        """A random id fixed at creation: derived caches check they belong to this catalog."""
        return str(self.db.meta("catalog_id"))

    def meta(self, key: str) -> str | None:
        return self.db.meta(key)

    def set_meta(self, key: str, value: str) -> None:
        self.db.set_meta(key, value)
