"""The search log and the clicks on its results, which train the learned ranker."""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from typing import Any

from lookalike.storage.database import Database


class FeedbackRepository:
    """``search_log`` (a search's channel rankings and the results shown) and ``clicks``."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def add_search(self, query_id: str, rankings: Any, shown: Sequence[int], keep: int) -> None:
        """Log a search (``rankings`` as JSON-ready data); only the latest ``keep`` stay."""
        with self.db.transaction() as conn:
            conn.execute("INSERT INTO search_log (id, created_at, rankings, shown) "
                         "VALUES (?, ?, ?, ?)",
                         (query_id, time.time(), json.dumps(rankings), json.dumps(list(shown))))
            conn.execute("DELETE FROM search_log WHERE rowid <= (SELECT MAX(rowid) FROM "
                         "search_log) - ?", (keep,))

    def search(self, query_id: str) -> tuple[Any, list[int]] | None:
        """(rankings, image ids shown) of a logged search; None when it is not logged."""
        row = self.db.one("SELECT rankings, shown FROM search_log WHERE id = ?", (query_id,))
        return None if row is None else (json.loads(row[0]), [int(i) for i in json.loads(row[1])])

    def add_click(self, query_id: str, image_id: int) -> None:
        with self.db.transaction() as conn:
            conn.execute("INSERT OR IGNORE INTO clicks (query_id, image_id, created_at) "
                         "VALUES (?, ?, ?)", (query_id, image_id, time.time()))

    def clicks(self) -> dict[str, set[int]]:
        """query id -> the image ids clicked among its results."""
        clicked: dict[str, set[int]] = {}
        for query_id, image_id in self.db.conn.execute("SELECT query_id, image_id FROM clicks"):
            clicked.setdefault(str(query_id), set()).add(int(image_id))
        return clicked

    def counts(self) -> dict[str, int]:
        searches = int(self.db.value("SELECT COUNT(*) FROM search_log"))
        row = self.db.one("SELECT COUNT(*), COUNT(DISTINCT query_id) FROM clicks")
        total, queries = row if row is not None else (0, 0)
        return {"searches": searches, "clicks": int(total), "clicked_searches": int(queries)}
