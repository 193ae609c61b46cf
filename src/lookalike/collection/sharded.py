"""Searching a split collection: every shard searched, the results merged by score.

The shards are opened in this process, or, given a Ray ``address``, each by a Ray actor
that holds its shard's indexes in memory (on whichever node Ray puts it). Each shard gets
the query as the caller gave it (a file's bytes, or the pixels) and decodes it as the one
collection would, so that it sees the same pixels; the shards' top k are merged by score.

Only the channels whose scores do not depend on the rest of the collection are merged
today: ``global``, ``regions`` and ``faces`` (cosine similarities), for which the merged
top k of exact indexes is the top k of the whole collection (up to images whose scores
tie to the last bit, whose order no index promises). The local channel's weights, BM25's
document frequencies and the fusion of ``auto`` need statistics over every shard first
(docs/scale-out.md); they are refused with a message until then. So are shards that do not
share the same models and learned files.

A shard that fails or does not answer within ``timeout_s`` (one deadline for the whole
query) is left out of the results, which say so (``partial``, and why for each shard
``missing``): never a silent short answer. An error in the query itself is raised.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from lookalike.collection.collection import Collection
from lookalike.collection.engines import Engine
from lookalike.collection.indexing import IndexReport
from lookalike.collection.ray_engine import connect, release, summary_of
from lookalike.collection.sharding import ShardSet, shard_of
from lookalike.errors import (
    CollectionError,
    ImageError,
    LookalikeError,
    NothingToSearchError,
    ValidationError,
    expect,
)
from lookalike.images import DEFAULT_MAX_PIXELS, Box, ImageInput
from lookalike.results import SearchResult

#: Channels whose scores mean the same in a shard as in the whole collection.
MERGEABLE = ("global", "regions", "faces")
#: Errors that come from the query, the same in every shard: raised, not a shard down.
QUERY_ERRORS = (ValidationError, NothingToSearchError, ImageError)
#: What every shard must share with the others for their scores to compare.
_SHARED_META = ("regions.projection", "local.vocabulary_id")


@dataclass(frozen=True)
class ShardedResults:
    """The merged results, and the shards that did not answer, each with its reason."""

    results: list[SearchResult]
    missing: dict[str, str] = field(default_factory=dict)

    @property
    def partial(self) -> bool:
        return bool(self.missing)

    def as_dict(self) -> dict[str, Any]:
        return {"partial": self.partial, "missing_shards": self.missing,
                "results": [result.as_dict() for result in self.results]}


class ShardSearcher:
    """One shard's collection, opened once; the Ray actor of a shard is this class."""

    def __init__(self, root: str, max_pixels: int = DEFAULT_MAX_PIXELS) -> None:
        self.collection = Collection(root, max_pixels=max_pixels).open(create=False)

    def identity(self) -> dict[str, Any]:
        """What must be the same in every shard: the manifest and the learned files."""
        catalog = self.collection.catalog
        return {"channels": {name: channel.manifest()
                             for name, channel in self.collection.channels.items()},
                **{key: catalog.meta(key) for key in _SHARED_META}}

    def search(self, query: ImageInput, k: int, channel: str,
               box: Box | None) -> list[SearchResult]:
        return self.collection.search(query, k=k, channel=channel, box=box)

    def close(self) -> None:
        self.collection.close()


class ShardedCollection:
    """Search the shards under ``root`` (see the module's doc); ``address`` puts each shard
    in a Ray actor of that cluster ("auto", "host:6379"; "local" starts one here)."""

    def __init__(self, root: str | os.PathLike[str], *, address: str | None = None,
                 timeout_s: float = 30.0, max_pixels: int = DEFAULT_MAX_PIXELS) -> None:
        self.shards = ShardSet.load(root)
        self.address = address
        self.timeout_s = timeout_s
        self.max_pixels = max_pixels
        self._local: list[ShardSearcher] = []
        self._pool: ThreadPoolExecutor | None = None
        self._actors: list[Any] = []

    def __enter__(self) -> ShardedCollection:
        return self.open()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def open(self) -> ShardedCollection:
        roots = [str(root) for root in self.shards.roots]
        try:
            if self.address is None:
                for root in roots:
                    self._local.append(ShardSearcher(root, self.max_pixels))
                # One pool for the collection's life: a thread keeps its SQLite connections.
                self._pool = ThreadPoolExecutor(max_workers=len(roots),
                                                thread_name_prefix="lookalike-shard")
                identities = [searcher.identity() for searcher in self._local]
            else:
                ray = connect(None if self.address == "local" else self.address)
                actor = ray.remote(num_cpus=0)(ShardSearcher)
                self._actors = [actor.remote(root, self.max_pixels) for root in roots]
                identities = ray.get([a.identity.remote() for a in self._actors],
                                     timeout=self.timeout_s + 60)
            self._check_alike(identities)
        except BaseException:
            self.close()
            raise
        return self

    def _check_alike(self, identities: list[dict[str, Any]]) -> None:
        first = identities[0]
        for name, found in zip(self.shards.names, identities, strict=True):
            if found != first:
                raise CollectionError(
                    f"{self.shards.root / name}: expected the models and learned files of "
                    f"{self.shards.names[0]}, got others; every shard must come from one split")
        whiten = first["channels"].get("global", {}).get("whiten")
        if whiten is not None:
            # Each shard would learn its own whitening from its own vectors.
            raise ValidationError(
                f"{self.shards.root}: expected a global channel without a learned whitening "
                f"for a sharded search, got whiten={whiten}; a whitening learned over every "
                "shard is not built yet (whiten_from, a fixed file, works)")

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None
        for searcher in self._local:
            searcher.close()
        if self._actors:
            import ray

            try:  # each shard saves its index cache, then goes
                ray.wait([actor.close.remote() for actor in self._actors],
                         num_returns=len(self._actors), timeout=self.timeout_s)
            finally:
                for actor in self._actors:
                    ray.kill(actor)
                release()
        self._local, self._actors = [], []

    def index(self, paths: Sequence[str | os.PathLike[str]], *, recursive: bool = True,
              engine: str | Engine = "local") -> dict[str, IndexReport]:
        """Bring every shard in step with ``paths``: each shard indexes the files that hash
        to it (and removes its own that are gone), one shard after the other, with the
        tree and projection the split gave it. Returns each shard's report."""
        reports = {}
        count = len(self.shards.names)
        for index, (name, root) in enumerate(zip(self.shards.names, self.shards.roots,
                                                 strict=True)):
            with Collection(root, max_pixels=self.max_pixels, engine=engine) as shard:
                reports[name] = shard.index(paths, recursive=recursive,
                                            keep=_ShardFilter(index, count))
        if self._local or self._actors:  # what is open searches the new rows too
            self.close()
            self.open()
        return reports

    def search(self, query: ImageInput, *, k: int = 10, channel: str = "global",
               box: Box | None = None) -> ShardedResults:
        expect(isinstance(k, int) and k >= 1, f"expected k to be a positive integer, got {k!r}")
        if channel not in MERGEABLE:
            raise ValidationError(
                f"expected a channel among {list(MERGEABLE)} for a sharded search, got "
                f"'{channel}' (local, text and auto need statistics over every shard, not "
                "built yet)")
        if not (self._local or self._actors):
            raise LookalikeError("the sharded collection is not open; call open() first")
        query = _as_sent(query)
        found, missing = (self._search_local(query, k, channel, box) if self._local
                          else self._search_actors(query, k, channel, box))
        return ShardedResults(merge(found, k), missing)

    def _search_local(self, query: ImageInput, k: int, channel: str, box: Box | None
                      ) -> tuple[list[list[SearchResult]], dict[str, str]]:
        if self._pool is None:
            raise LookalikeError("the sharded collection is not open; call open() first")
        futures = [self._pool.submit(searcher.search, query, k, channel, box)
                   for searcher in self._local]
        wait(futures, timeout=self.timeout_s)  # one deadline for all the shards
        found: list[list[SearchResult]] = []
        missing: dict[str, str] = {}
        for name, future in zip(self.shards.names, futures, strict=True):
            if not future.done():
                future.cancel()
                missing[name] = f"no answer within {self.timeout_s:g} s"
            else:
                _collect(name, future, found, missing)
        return found, missing

    def _search_actors(self, query: ImageInput, k: int, channel: str, box: Box | None
                       ) -> tuple[list[list[SearchResult]], dict[str, str]]:
        import ray

        shared = ray.put(query)  # one copy in the object store for every shard
        calls = [actor.search.remote(shared, k, channel, box) for actor in self._actors]
        deadline = time.monotonic() + self.timeout_s
        ready, _ = ray.wait(calls, num_returns=len(calls),
                            timeout=max(0.0, deadline - time.monotonic()))
        done = set(ready)
        found: list[list[SearchResult]] = []
        missing: dict[str, str] = {}
        for name, call in zip(self.shards.names, calls, strict=True):
            if call not in done:
                ray.cancel(call)
                missing[name] = f"no answer within {self.timeout_s:g} s"
                continue
            try:
                found.append(ray.get(call))
            except ray.exceptions.RayTaskError as error:
                cause = error.cause if isinstance(error.cause, BaseException) else error
                if isinstance(cause, QUERY_ERRORS):
                    raise cause from error
                missing[name] = summary_of(cause)
            except ray.exceptions.RayError as error:  # the actor or its node is gone
                missing[name] = summary_of(error)
        return found, missing


@dataclass(frozen=True)
class _ShardFilter:
    """Keeps the paths that hash to shard ``index`` of ``count``."""

    index: int
    count: int

    def __call__(self, path: str) -> bool:
        return shard_of(path, self.count) == self.index


def _collect(name: str, future: Future[list[SearchResult]], found: list[list[SearchResult]],
             missing: dict[str, str]) -> None:
    try:
        found.append(future.result())
    except QUERY_ERRORS:
        raise  # the query itself is wrong: every shard would say so
    except Exception as error:  # a shard down or broken: reported, not hidden
        missing[name] = summary_of(error)


def _as_sent(query: ImageInput) -> ImageInput:
    """A file's bytes instead of its path, so that a shard on another machine can read it;
    each shard decodes it as the one collection would."""
    if isinstance(query, str | os.PathLike):
        path = Path(query)
        try:
            return path.read_bytes()
        except OSError as error:
            raise ImageError(str(path), f"cannot read file ({error.strerror or error})") \
                from error
    return query


def merge(per_shard: list[list[SearchResult]], k: int) -> list[SearchResult]:
    """The best ``k`` of the shards' results by score (ties by image id, unique across
    the shards of one collection), ranked again from 1."""
    pooled = sorted((result for results in per_shard for result in results),
                    key=lambda result: (-result.score, result.image_id))
    return [replace(result, rank=rank) for rank, result in enumerate(pooled[:k], start=1)]


def is_sharded(root: str | os.PathLike[str]) -> bool:
    return (Path(root) / "shards.json").is_file()
