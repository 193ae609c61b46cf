"""One SQLite connection in WAL mode, its transactions, and its small helpers.

Every repository of the catalog shares this connection. Each batch of indexing work is
one transaction, so a crash or ``kill -9`` at any point leaves the last committed state
intact and the next run simply carries on.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeAlias

from lookalike.errors import CollectionError
from lookalike.storage.schema import MARKS_PENDING, SCHEMA, SCHEMA_VERSION

#: An open write: what every repository's write method takes, inside ``transaction()``.
#: Outside this package it is only passed along, never used for SQL.
Transaction: TypeAlias = sqlite3.Connection
_IN_CHUNK = 500  # values per IN (...) list, well below SQLite's bound-parameter limit


class Database:
    """The catalog file's connections, shared by the repositories: one per thread, so that
    threads read at once (WAL lets readers run beside the one writer) and a thread's reads
    inside its own transaction see its own writes."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._local = threading.local()
        self._opened: list[sqlite3.Connection] = []
        self._guard = threading.Lock()

    def open(self) -> Database:
        if self._opened:
            return self
        try:
            self._register(_connect(self.path))
        except sqlite3.DatabaseError as error:
            raise CollectionError(f"{self.path}: not a usable catalog ({error})") from error
        return self

    def needs_setup(self) -> bool:
        """Whether opening will create or upgrade the tables (or switch to WAL): work that
        two processes must not do at once, so the catalog does it under its write lock."""
        try:
            conn = sqlite3.connect(self.path, timeout=30.0)
            try:
                version = conn.execute("PRAGMA user_version").fetchone()[0]
                mode = conn.execute("PRAGMA journal_mode").fetchone()[0]
            finally:
                conn.close()
        except sqlite3.DatabaseError:
            return True  # open() reports what is wrong
        return bool(version != SCHEMA_VERSION or str(mode).lower() != "wal")

    def close(self) -> None:
        with self._guard:
            opened, self._opened = self._opened, []
        for conn in opened:
            conn.close()
        self._local = threading.local()

    @property
    def conn(self) -> sqlite3.Connection:
        """This thread's connection (made on its first use, once the catalog is open)."""
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is not None:
            return conn
        if not self._opened:
            raise CollectionError(f"{self.path}: catalog is not open; call open() first")
        try:
            return self._register(_reader(self.path))
        except sqlite3.DatabaseError as error:
            raise CollectionError(f"{self.path}: not a usable catalog ({error})") from error

    def _register(self, conn: sqlite3.Connection) -> sqlite3.Connection:
        with self._guard:
            self._opened.append(conn)
        self._local.conn = conn
        return conn

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

    def one(self, query: str, params: Sequence[object] = ()) -> tuple[Any, ...] | None:
        """The first row of ``query``, or None."""
        row: tuple[Any, ...] | None = self.conn.execute(query, params).fetchone()
        return row

    def value(self, query: str, params: Sequence[object] = ()) -> Any:
        """The first column of the first row of ``query`` (a count, a sequence number)."""
        row = self.one(query, params)
        return None if row is None else row[0]

    def meta(self, key: str) -> str | None:
        value = self.value("SELECT value FROM meta WHERE key = ?", (key,))
        return None if value is None else str(value)

    def set_meta(self, key: str, value: str) -> None:
        with self.transaction() as conn:
            conn.execute("INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT(key) "
                         "DO UPDATE SET value = excluded.value", (key, value))

    def sequence(self, table: str) -> int:
        """The highest id an AUTOINCREMENT table ever handed out (0 before the first)."""
        value = self.value("SELECT seq FROM sqlite_sequence WHERE name = ?", (table,))
        return int(value) if value is not None else 0


def _reader(path: Path) -> sqlite3.Connection:
    """A connection of another thread to a catalog already opened (and upgraded)."""
    # isolation_level=None: we issue BEGIN/COMMIT ourselves, one per batch.
    conn = sqlite3.connect(path, timeout=30.0, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("PRAGMA foreign_keys=ON")
    # SQLite's lower() folds ASCII only; filters compare names as Python does.
    conn.create_function("casefold", 1, _casefold, deterministic=True)
    return conn


def _connect(path: Path) -> sqlite3.Connection:
    """The first connection: sets WAL mode, creates or upgrades the tables."""
    conn = _reader(path)
    conn.execute("PRAGMA journal_mode=WAL")
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    if version not in (0, 1, 2, SCHEMA_VERSION):
        conn.close()
        raise CollectionError(f"{path}: expected catalog schema {SCHEMA_VERSION} or older, got "
                              f"{version}: it was written by a newer Lookalike; upgrade it "
                              "(pip install -U lookalike)")
    conn.executescript(SCHEMA)
    if version == 1:  # schema 1 -> 2: channel marks, filled by the collection that knows
        conn.execute("INSERT OR IGNORE INTO meta (key, value) VALUES (?, '1')",
                     (MARKS_PENDING,))
    conn.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
    return conn


def _casefold(text: str | None) -> str | None:
    return None if text is None else text.casefold()
