"""Relevance judgements for the learned ranker: from a ground-truth file, or from clicks.

Clicks are logged by the web page: every search logs each channel's ranking (the
features the ranker needs) and the results shown; a click marks one shown result. A
query's clicked results count as relevant, and the results shown above the lowest click
but not clicked as irrelevant ("click > skip above", Joachims, KDD 2002); results below
the last click were maybe never seen, so they are not judged.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from lookalike.collection.registry import CHANNELS
from lookalike.errors import NotFoundError, expect
from lookalike.paths import catalog_key
from lookalike.ranking import Judged
from lookalike.results import Hit, ScoreEvidence
from lookalike.storage import Catalog

LOGGED_DEPTH = 50  # hits kept per channel, besides those of the images shown
MAX_LOGGED_SEARCHES = 100_000  # the oldest go first: the log cannot grow without bound


class Feedback:
    """A collection's search and click log (``Collection.feedback``)."""

    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog

    def log_search(self, rankings: Mapping[str, Sequence[Hit]], shown: Sequence[int]) -> str:
        """Record a search's channel rankings and the image ids shown; returns its query id."""
        query_id = secrets.token_hex(8)
        visible = set(shown)
        # The top of each ranking, and wherever the shown images are in it (a click on page
        # five needs its features too), with the evidence the ranker's features come from.
        compact = {channel: [[hit.image_id, round(hit.score, 6), hit.evidence.logged()]
                             for rank, hit in enumerate(hits)
                             if rank < LOGGED_DEPTH or hit.image_id in visible]
                   for channel, hits in rankings.items()}
        self.catalog.feedback.add_search(query_id, compact, shown, keep=MAX_LOGGED_SEARCHES)
        return query_id

    def log_click(self, query_id: str, image_id: int) -> int:
        """Record that the result ``image_id`` of search ``query_id`` was opened; its rank."""
        expect(isinstance(query_id, str) and 0 < len(query_id) <= 64,
               f"expected a query id, got {query_id!r}")
        logged = self.catalog.feedback.search(query_id)
        if logged is None:
            raise NotFoundError(f"expected the id of a logged search, got {query_id!r}")
        shown = logged[1]
        if image_id not in shown:
            raise NotFoundError(f"expected one of the results shown for {query_id}, got image "
                                f"{image_id}")
        self.catalog.feedback.add_click(query_id, image_id)
        return shown.index(image_id) + 1

    def counts(self) -> dict[str, int]:
        """Logged searches, clicks, and searches with a click."""
        return self.catalog.feedback.counts()

    def judged(self) -> list[Judged]:
        """One judged query per logged search with at least one click."""
        samples = []
        for query_id, chosen in sorted(self.catalog.feedback.clicks().items()):
            logged = self.catalog.feedback.search(query_id)
            if logged is None:
                continue
            rankings, shown = _rankings(logged[0]), logged[1]
            lowest = max(shown.index(image_id) for image_id in chosen if image_id in shown)
            samples.append(Judged(rankings=rankings, relevant=frozenset(chosen),
                                  judged=frozenset(shown[:lowest + 1])))
        return samples


def _rankings(data: Mapping[str, Any]) -> dict[str, list[Hit]]:
    """Logged rankings as hits with their channel's evidence type (a channel no longer
    registered reads back with its score alone)."""
    rankings = {}
    for channel, hits in data.items():
        evidence = CHANNELS.get(channel).evidence if channel in CHANNELS else ScoreEvidence
        rankings[str(channel)] = [Hit(int(image_id), float(score),
                                      evidence.from_dict(dict(found)))
                                  for image_id, score, found in hits]
    return rankings


def judged_from_truth(collection: Any, queries: Sequence[Any], *, channel: str = "auto",
                      depth: int = 100) -> list[Judged]:
    """One judged query per ground-truth query (``path``, ``relevant``, ``junk``, ``box``
    as in :class:`lookalike.eval.datasets.RetrievalQuery`): every candidate the channels
    return is judged, except junk."""
    samples = []
    for query in queries:
        image = collection.decode_query(query.path, channel=channel, box=query.box)
        rankings = collection.rankings(image, k=depth, channel=channel, box=query.box)
        keys = [catalog_key(path) for path in (*query.relevant, *query.junk)]
        ids = {path: record.id for path, record in
               collection.catalog.images.by_path(keys).items()}
        samples.append(judge(rankings, query.relevant, query.junk, ids))
    return samples


def judge(rankings: Mapping[str, Sequence[Hit]], relevant: Iterable[str | os.PathLike[str]],
          junk: Iterable[str | os.PathLike[str]], ids: Mapping[str, int]) -> Judged:
    """A query's judgements by image id (``ids``: catalogued path -> id): every candidate
    is judged, relevant or not, except junk, which is left out."""
    def known(paths: Iterable[str | os.PathLike[str]]) -> frozenset[int]:
        return frozenset(ids[key] for key in map(catalog_key, paths) if key in ids)

    unjudged = known(junk)
    candidates = frozenset(hit.image_id for hits in rankings.values() for hit in hits)
    return Judged(rankings=rankings, relevant=known(relevant),
                  judged=candidates - unjudged if unjudged else None)
