"""Searching a split collection: every shard searched, the results merged by score.

The shards are opened in this process, or, given a Ray ``address``, each by a Ray actor
that holds its shard's indexes in memory (on whichever node Ray puts it). A query is
decoded once, sent to every shard, and the shards' top k are merged by score.

Only the channels whose scores do not depend on the rest of the collection are merged
today: ``global``, ``regions`` and ``faces`` (cosine similarities), for which the merged
top k of exact indexes is the top k of the whole collection. The local channel's weights,
BM25's document frequencies and the fusion of ``auto`` need statistics over every shard
first (docs/scale-out.md); they are refused with a message until then.

A shard that fails or does not answer within ``timeout_s`` leaves it out of the results,
which say so (``partial`` and the shards ``missing``): never a silent short answer.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from lookalike.collection.collection import Collection
from lookalike.collection.ray_engine import connect
from lookalike.collection.sharding import ShardSet
from lookalike.errors import LookalikeError, ValidationError, expect
from lookalike.images import Box, ImageInput, load_image
from lookalike.results import SearchResult

#: Channels whose scores mean the same in a shard as in the whole collection.
MERGEABLE = ("global", "regions", "faces")


@dataclass(frozen=True)
class ShardedResults:
    """The merged results, and which shards did not answer (``partial`` when any)."""

    results: list[SearchResult]
    missing: list[str] = field(default_factory=list)

    @property
    def partial(self) -> bool:
        return bool(self.missing)

    def as_dict(self) -> dict[str, Any]:
        return {"partial": self.partial, "missing_shards": self.missing,
                "results": [result.as_dict() for result in self.results]}


class ShardSearcher:
    """One shard's collection, opened once; the Ray actor of a shard is this class."""

    def __init__(self, root: str) -> None:
        self.collection = Collection(root).open(create=False)

    def search(self, image: np.ndarray, k: int, channel: str,
               box: Box | None) -> list[SearchResult]:
        return self.collection.search(image, k=k, channel=channel, box=box)

    def close(self) -> None:
        self.collection.close()


class ShardedCollection:
    """Search the shards under ``root`` (see the module's doc); ``address`` puts each shard
    in a Ray actor of that cluster ("auto", "host:6379"; "local" starts one here)."""

    def __init__(self, root: str | os.PathLike[str], *, address: str | None = None,
                 timeout_s: float = 30.0) -> None:
        self.shards = ShardSet.load(root)
        self.address = address
        self.timeout_s = timeout_s
        self._local: list[ShardSearcher] = []
        self._actors: list[Any] = []

    def __enter__(self) -> ShardedCollection:
        return self.open()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def open(self) -> ShardedCollection:
        roots = [str(root) for root in self.shards.roots]
        learned = getattr(Collection.read_configs(roots[0]).get("global"), "whiten", None)
        if learned is not None:
            # Each shard would learn its own whitening from its own vectors.
            raise ValidationError(
                f"{self.shards.root}: expected a global channel without a learned whitening "
                f"for a sharded search, got whiten={learned}; a whitening learned over every "
                "shard is not built yet "
                "(whiten_from, a fixed file, works)")
        if self.address is None:
            self._local = [ShardSearcher(root) for root in roots]
        else:
            ray = connect(None if self.address == "local" else self.address)
            actor = ray.remote(num_cpus=0)(ShardSearcher)
            self._actors = [actor.remote(root) for root in roots]
        return self

    def close(self) -> None:
        for searcher in self._local:
            searcher.close()
        self._local, self._actors = [], []

    def search(self, query: ImageInput, *, k: int = 10, channel: str = "global",
               box: Box | None = None) -> ShardedResults:
        expect(isinstance(k, int) and k >= 1, f"expected k to be a positive integer, got {k!r}")
        if channel not in MERGEABLE:
            raise ValidationError(
                f"expected a channel among {list(MERGEABLE)} for a sharded search, got "
                f"'{channel}': its scores need statistics over every shard, not built yet")
        image = load_image(query)
        found, missing = (self._search_local(image, k, channel, box) if self._local
                          else self._search_actors(image, k, channel, box))
        return ShardedResults(merge(found, k), missing)

    def _search_local(self, image: np.ndarray, k: int, channel: str, box: Box | None
                      ) -> tuple[list[list[SearchResult]], list[str]]:
        if not self._local:
            raise LookalikeError("the sharded collection is not open; call open() first")
        with ThreadPoolExecutor(max_workers=len(self._local)) as pool:
            futures = [pool.submit(searcher.search, image, k, channel, box)
                       for searcher in self._local]
            return self._gather([lambda f=future: f.result(self.timeout_s)
                                 for future in futures])

    def _search_actors(self, image: np.ndarray, k: int, channel: str, box: Box | None
                       ) -> tuple[list[list[SearchResult]], list[str]]:
        if not self._actors:
            raise LookalikeError("the sharded collection is not open; call open() first")
        import ray

        shared = ray.put(image)  # one copy in the object store for every shard
        calls = [actor.search.remote(shared, k, channel, box) for actor in self._actors]
        return self._gather([lambda c=call: ray.get(c, timeout=self.timeout_s)
                             for call in calls])

    def _gather(self, waits: list[Any]) -> tuple[list[list[SearchResult]], list[str]]:
        found, missing = [], []
        for name, wait in zip(self.shards.names, waits, strict=True):
            try:
                found.append(wait())
            except ValidationError:
                raise  # the query itself is wrong: every shard would say so
            except Exception:  # a shard down, lost or too slow: reported, not hidden
                missing.append(name)
        return found, missing


def merge(per_shard: list[list[SearchResult]], k: int) -> list[SearchResult]:
    """The best ``k`` of the shards' results by score (ties by image id, unique across
    the shards of one collection), ranked again from 1."""
    pooled = sorted((result for results in per_shard for result in results),
                    key=lambda result: (-result.score, result.image_id))
    return [replace(result, rank=rank) for rank, result in enumerate(pooled[:k], start=1)]


def is_sharded(root: str | os.PathLike[str]) -> bool:
    return (Path(root) / "shards.json").is_file()
