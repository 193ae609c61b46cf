"""The SQLite catalog: chunked look-ups, folder prefixes, transactions, and SQL in one place."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from lookalike.errors import CollectionError
from lookalike.storage import Catalog

SOURCE = Path(__file__).parents[1] / "src" / "lookalike"


def add(catalog: Catalog, path: str) -> int:
    with catalog.transaction() as conn:
        return catalog.images.upsert(conn, path=path, sha256="x", size=1, mtime_ns=1, width=1,
                                    height=1, status="indexed", error=None)


def test_lookups_beyond_the_sql_parameter_limit(tmp_path: Path) -> None:
    catalog = Catalog(tmp_path / "c.sqlite").open()
    paths = [f"/photos/{i:05d}.jpg" for i in range(1203)]
    with catalog.transaction() as conn:
        for path in paths:
            image_id = catalog.images.upsert(conn, path=path, sha256=None, size=1, mtime_ns=1,
                                             width=1, height=1, status="indexed", error=None)
            catalog.vectors.replace(conn, "global", image_id,
                                    [np.full(4, image_id, np.float32).tobytes()])
    assert set(catalog.images.by_path(paths)) == set(paths)
    ids = [record.id for record in catalog.images.by_path(paths).values()]
    assert len(catalog.images.by_id(ids)) == 1203
    vector_ids, matrix = catalog.vectors.load("global", 4, list(range(1, 1204)))
    assert list(vector_ids) == list(range(1, 1204)) and matrix[10, 0] == 11
    blobs = catalog.vectors.of_images("global", ids)
    assert len(blobs) == 1203 and all(len(b) == 1 for b in blobs.values())


def test_paths_under_treats_wildcards_literally_and_stops_at_the_folder(tmp_path: Path) -> None:
    catalog = Catalog(tmp_path / "c.sqlite").open()
    for path in ["/a/100%/x.jpg", "/a/1000/y.jpg", "/a/b_c/z.jpg", "/a/bxc/w.jpg", "/a/b/q.jpg",
                 "/a/bb/r.jpg"]:
        add(catalog, path)
    assert catalog.images.paths_under("/a/100%") == ["/a/100%/x.jpg"]
    assert catalog.images.paths_under("/a/b_c") == ["/a/b_c/z.jpg"]
    assert catalog.images.paths_under("/a/b/") == ["/a/b/q.jpg"]


def test_a_failed_transaction_leaves_nothing(tmp_path: Path) -> None:
    catalog = Catalog(tmp_path / "c.sqlite").open()
    with pytest.raises(RuntimeError), catalog.transaction() as conn:
        catalog.images.upsert(conn, path="/x.jpg", sha256=None, size=1, mtime_ns=1, width=1,
                              height=1, status="indexed", error=None)
        raise RuntimeError("crash in the middle of a batch")
    assert catalog.images.count() == 0


def test_a_file_that_is_not_sqlite_is_refused(tmp_path: Path) -> None:
    (tmp_path / "c.sqlite").write_bytes(b"this is not a database" * 100)
    with pytest.raises(CollectionError, match="not a usable catalog"):
        Catalog(tmp_path / "c.sqlite").open()
    with pytest.raises(CollectionError, match="not open"):
        _ = Catalog(tmp_path / "other.sqlite").db.conn


def test_every_sql_statement_lives_in_the_storage_package() -> None:
    """A later backend (Postgres) has one place to go: no module outside
    ``lookalike.storage`` runs SQL or touches a connection."""
    sql = ("execute(", "executemany(", "executescript(", "select_in(", ".conn", "sqlite3.connect")
    # h11's HTTP connection, not a database's
    http = {("server/slow_clients.py", ".conn")}
    offenders = [f"{path.relative_to(SOURCE)}: {needle}"
                 for path in sorted(SOURCE.rglob("*.py")) if "storage" not in path.parts
                 for needle in sql if needle in path.read_text()
                 and (path.relative_to(SOURCE).as_posix(), needle) not in http]
    assert offenders == []
