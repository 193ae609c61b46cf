"""The local channel across the shards of a split collection, ranked as the whole ranks.

Three things make a vocabulary-tree score depend on the rest of the collection, and each
is done across the shards here:

- **The weights.** ``ln((N + 1) / N_i)`` counts images in every shard. Each shard gives its own
  node counts, their sum goes back to every shard (:func:`share_statistics`), and every
  shard weighs its vectors, and the query, by it. A shard whose images change afterwards
  says so with each answer (its version), and the statistics are gathered again; so does
  a query whose vector was weighed by statistics that another query has since replaced.
- **The verification depth.** RANSAC re-ranks the best ``verify`` candidates of the whole
  collection, not of each shard: the shards' best are merged first, then each candidate
  is verified in the shard that holds its keypoints (:class:`ShardCorpus`).
- **Query expansion.** The verified matches' vectors come from their shards; the expanded
  query is searched in every shard again.

The ranking itself is the one collection's (:func:`lookalike.collection.local_ranking.rank`),
so with the same statistics the results are the same.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from lookalike.collection.fanout import FanOut
from lookalike.collection.local_ranking import (
    LocalQuery,
    RankingSettings,
    SparseVector,
    TreeQuery,
    rank,
)
from lookalike.collection.shard_searcher import Version
from lookalike.errors import LookalikeError
from lookalike.local.inverted import CorpusStatistics
from lookalike.results import Hit
from lookalike.storage import ImageRecord


class StaleStatistics(LookalikeError):
    """A shard's images, or the statistics it weighs by, changed since this query began."""


@dataclass(frozen=True)
class SharedStatistics:
    """The statistics every shard was given for a query: their ``token``, and each shard's
    version once it took them (its tree, images and statistics)."""

    token: int
    versions: Mapping[int, Version]


def share_statistics(fan: FanOut, token: int) -> SharedStatistics:
    """Give the shards that answer the statistics of all of them, named ``token``. A shard
    whose images changed between the two steps makes it stale."""
    parts = fan.all("local_statistics")
    total = CorpusStatistics.total([statistics for statistics, _ in parts.values()])
    versions = fan.call("use_local_corpus", {shard: (total, token) for shard in parts})
    if any(versions[shard][1] != revision for shard, (_, revision) in parts.items()
           if shard in versions):
        raise StaleStatistics("a shard changed while the statistics were gathered")
    return SharedStatistics(token, versions)


class ShardCorpus:
    """The indexed images of every shard, as :func:`rank` asks for them; the records of
    the images it met are gathered in :attr:`records`. Every answer must come from the
    version of its shard that took the statistics, or the query starts again."""

    def __init__(self, fan: FanOut, shared: SharedStatistics) -> None:
        self.fan = fan
        self.shared = shared
        self.records: dict[int, ImageRecord] = {}
        self._owner: dict[int, int] = {}

    def top(self, query: TreeQuery, n: int) -> list[tuple[int, float]]:
        pooled: list[tuple[int, float]] = []
        for shard, answer in self.fan.all("local_top", query, n).items():
            self._check(shard, answer.version)
            self.records.update(answer.records)
            self._owner.update((image_id, shard) for image_id, _ in answer.hits)
            pooled.extend(answer.hits)
        # As one collection's inverted files order them: by score, then by image id.
        return sorted(pooled, key=lambda hit: (-hit[1], hit[0]))[:n]

    def verify(self, query: LocalQuery, candidates: Sequence[tuple[int, float]]) -> list[Hit]:
        answers = self.fan.call("local_verify", {
            shard: (query, mine) for shard, mine in self._by_owner(candidates).items()})
        found: dict[int, Hit] = {}
        for shard, (hits, version) in answers.items():
            self._check(shard, version)
            found.update((hit.image_id, hit) for hit in hits)
        return [found[image_id] for image_id, _ in candidates if image_id in found]

    def stored_vectors(self, image_ids: Sequence[int]) -> list[SparseVector]:
        asked = self._by_owner([(image_id, 0.0) for image_id in image_ids])
        answers = self.fan.call("local_vectors", {
            shard: ([image_id for image_id, _ in mine],) for shard, mine in asked.items()})
        found: dict[int, SparseVector] = {}
        for shard, (vectors, version) in answers.items():
            self._check(shard, version)
            found.update((image_id, vector)
                         for (image_id, _), vector in zip(asked[shard], vectors, strict=True))
        return [found[image_id] for image_id in image_ids if image_id in found]

    def _check(self, shard: int, version: Version) -> None:
        if version != self.shared.versions.get(shard):
            raise StaleStatistics(f"shard {self.fan.names[shard]} changed")

    def _by_owner(self, hits: Sequence[tuple[int, float]]
                  ) -> dict[int, list[tuple[int, float]]]:
        grouped: dict[int, list[tuple[int, float]]] = {}
        for image_id, score in hits:
            grouped.setdefault(self._owner[image_id], []).append((image_id, score))
        return grouped


class ShardedLocal:
    """The local channel of a split collection: its statistics, shared once (and again
    when a shard changes or was down), and its ranking of a query. Safe to share between
    threads: each query keeps the statistics it began with."""

    def __init__(self, settings: RankingSettings) -> None:
        self.settings = settings
        self._shared: SharedStatistics | None = None
        self._tokens = itertools.count(1)
        self._lock = threading.Lock()

    def share(self, fan: FanOut) -> SharedStatistics:
        """The statistics every shard weighs by, shared now unless they are already (before
        a query's vector is made: the weights are in it). Kept only when every shard took
        them."""
        with self._lock:
            if self._shared is not None:
                return self._shared
            shared = share_statistics(fan, next(self._tokens))
            if not fan.missing:
                self._shared = shared
            return shared

    def forget(self, shared: SharedStatistics) -> None:
        """Share again before the next query, unless another query already did."""
        with self._lock:
            if self._shared is shared:
                self._shared = None

    def ranking(self, fan: FanOut, query: LocalQuery | None, shared: SharedStatistics, k: int
                ) -> tuple[list[Hit], dict[int, ImageRecord]]:
        """The local channel's ``k`` best for ``query`` (made by one shard after
        :meth:`share`) over every shard that answers, and the records of the images in it.
        Raises :class:`StaleStatistics` when something changed since: share, and ask again."""
        if query is None:
            return [], {}  # no tree yet: nothing indexed had keypoints
        if query.corpus != shared.token:
            raise StaleStatistics("the query was weighed by other statistics")
        corpus = ShardCorpus(fan, shared)
        return rank(corpus, query, k, self.settings), corpus.records
