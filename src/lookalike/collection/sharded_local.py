"""The local channel across the shards of a split collection, ranked as the whole ranks.

Three things make a vocabulary-tree score depend on the rest of the collection, and each
is done across the shards here:

- **The weights.** ``ln(N / N_i)`` counts images in every shard. Each shard gives its own
  node counts, their sum goes back to every shard (:func:`share_statistics`), and every
  shard weighs its vectors, and the query, by it. A shard whose images change afterwards
  says so with each answer (its version), and the statistics are gathered again.
- **The verification depth.** RANSAC re-ranks the best ``verify`` candidates of the whole
  collection, not of each shard: the shards' best are merged first, then each candidate
  is verified in the shard that holds its keypoints (:class:`ShardCorpus`).
- **Query expansion.** The verified matches' vectors come from their shards; the expanded
  query is searched in every shard again.

The ranking itself is the one collection's (:func:`lookalike.collection.local_ranking.rank`),
so with the same statistics the results are the same.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from lookalike.collection.fanout import FanOut
from lookalike.collection.local_ranking import (
    LocalQuery,
    RankingSettings,
    SparseVector,
    rank,
)
from lookalike.errors import CollectionError, LookalikeError
from lookalike.local.inverted import CorpusStatistics
from lookalike.results import Hit
from lookalike.storage import ImageRecord

Version = tuple[str | None, int]


class StaleStatistics(LookalikeError):
    """A shard's images changed since the statistics every shard weighs by were gathered."""


def share_statistics(fan: FanOut) -> dict[int, Version]:
    """Give every shard the statistics of all of them; returns the version each was at."""
    answers = fan.all("local_statistics")
    if fan.missing:
        raise CollectionError(
            "expected every shard to give its local statistics, got none from "
            + "; ".join(f"{name} ({why})" for name, why in fan.missing.items())
            + "; the local channel cannot weigh its scores without them")
    fan.all("use_local_corpus",
            CorpusStatistics.total([statistics for statistics, _ in answers.values()]))
    return {shard: version for shard, (_, version) in answers.items()}


def ranking_settings(manifest: Mapping[str, Any]) -> RankingSettings:
    """The ranking settings of a local channel's manifest entry."""
    return RankingSettings(int(manifest["verify"]), int(manifest["expand"]),
                           str(manifest["norm"]))


class ShardCorpus:
    """The indexed images of every shard, as :func:`rank` asks for them; the records of
    the images it met are gathered in :attr:`records`."""

    def __init__(self, fan: FanOut, versions: Mapping[int, Version]) -> None:
        self.fan = fan
        self.versions = versions
        self.records: dict[int, ImageRecord] = {}
        self._owner: dict[int, int] = {}

    def top(self, vector: SparseVector, n: int) -> list[tuple[int, float]]:
        pooled: list[tuple[int, float]] = []
        for shard, answer in self.fan.all("local_top", vector, n).items():
            if answer.version != self.versions.get(shard):
                raise StaleStatistics(f"shard {self.fan.names[shard]} changed")
            self.records.update(answer.records)
            self._owner.update((image_id, shard) for image_id, _ in answer.hits)
            pooled.extend(answer.hits)
        # As one collection's inverted files order them: by score, then by image id.
        return sorted(pooled, key=lambda hit: (-hit[1], hit[0]))[:n]

    def verify(self, query: LocalQuery, candidates: Sequence[tuple[int, float]]) -> list[Hit]:
        answers = self.fan.call("local_verify", {
            shard: (query, mine) for shard, mine in self._by_owner(candidates).items()})
        found = {hit.image_id: hit for hits in answers.values() for hit in hits}
        return [found[image_id] for image_id, _ in candidates if image_id in found]

    def stored_vectors(self, image_ids: Sequence[int]) -> list[SparseVector]:
        asked = self._by_owner([(image_id, 0.0) for image_id in image_ids])
        answers = self.fan.call("local_vectors", {
            shard: ([image_id for image_id, _ in mine],) for shard, mine in asked.items()})
        found = {image_id: vector for shard, vectors in answers.items()
                 for (image_id, _), vector in zip(asked[shard], vectors, strict=True)}
        return [found[image_id] for image_id in image_ids if image_id in found]

    def _by_owner(self, hits: Sequence[tuple[int, float]]
                  ) -> dict[int, list[tuple[int, float]]]:
        grouped: dict[int, list[tuple[int, float]]] = {}
        for image_id, score in hits:
            grouped.setdefault(self._owner[image_id], []).append((image_id, score))
        return grouped


class ShardedLocal:
    """The local channel of a split collection: its statistics, shared once (and again
    when a shard changes), and its ranking of a query."""

    def __init__(self, settings: RankingSettings) -> None:
        self.settings = settings
        self._versions: dict[int, Version] | None = None

    def forget(self) -> None:
        """Gather the statistics again before the next query."""
        self._versions = None

    def share(self, fan: FanOut) -> None:
        """Make sure every shard weighs by the statistics of all (before a query's vector
        is made: the weights are in it)."""
        if self._versions is None:
            self._versions = share_statistics(fan)

    def ranking(self, fan: FanOut, query: LocalQuery | None, k: int
                ) -> tuple[list[Hit], dict[int, ImageRecord]]:
        """The local channel's ``k`` best for ``query`` (made by one shard after
        :meth:`share`) over every shard that answers, and the records of the images in it.
        Raises :class:`StaleStatistics` when a shard changed since: share, and ask again."""
        if query is None:
            return [], {}  # no tree yet: nothing indexed had keypoints
        if self._versions is None:
            raise StaleStatistics("the statistics were not shared yet")
        corpus = ShardCorpus(fan, self._versions)
        return rank(corpus, query, k, self.settings), corpus.records
