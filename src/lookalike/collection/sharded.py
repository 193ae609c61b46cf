"""Searching a split collection: every shard searched, the results ranked as the whole's.

The shards are opened in this process, or, given a Ray ``address``, each by a Ray actor
that holds its shard's indexes in memory (on whichever node Ray puts it; see
:mod:`lookalike.collection.shard_searcher`). Each shard gets the query as the caller gave
it (a file's bytes, or the pixels) and decodes it as the one collection would.

- ``global``, ``regions`` and ``faces`` score each image by itself (cosine similarities):
  each shard's top k is merged by score, which for exact indexes is the whole collection's
  top k (up to images whose scores tie to the last bit, whose order no index promises).
- ``local`` weighs by statistics over every shard and verifies the whole collection's best
  candidates, each in its own shard (:mod:`lookalike.collection.sharded_local`).
- ``text`` ranks by BM25 over one index of every shard's documents, and by meaning over
  their merged texts (:mod:`lookalike.collection.sharded_text`).
- ``auto`` fuses those rankings here, as one collection fuses its own, with the learned
  ranker the shards share.

Shards that do not share the same models and learned files are refused with a message, as
is a global whitening each shard would learn alone (a split shares the one the collection
learned). Search filters are not taken yet.

A shard that fails or does not answer within ``timeout_s`` (one deadline for the whole
query, every step included) is left out of the results, which say so (``partial``, and
why for each shard ``missing``): never a silent short answer. An error in the query
itself is raised.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lookalike.collection.collection import Collection
from lookalike.collection.engines import Engine
from lookalike.collection.fanout import FanOut
from lookalike.collection.indexing import IndexReport
from lookalike.collection.local_ranking import LocalQuery, RankingSettings
from lookalike.collection.people import ImageFace
from lookalike.collection.ray_engine import connect, release, summary_of
from lookalike.collection.registry import auto_fusion
from lookalike.collection.searching import (
    RankerFile,
    check_text_alone,
    fuse_rankings,
    results_of,
    unknown_channel,
)
from lookalike.collection.shard_searcher import ShardAnswer, ShardSearcher
from lookalike.collection.sharded_local import ShardedLocal, SharedStatistics, StaleStatistics
from lookalike.collection.sharded_text import ShardedText
from lookalike.collection.sharding import ShardSet, shard_of
from lookalike.collection.text_channel import TextQuery
from lookalike.errors import (
    CollectionError,
    ImageError,
    LookalikeError,
    NotFoundError,
    ShardsUnavailableError,
    ValidationError,
    expect,
)
from lookalike.fusion import DEFAULT_FUSION, FUSIONS, fuses, fusion_depth
from lookalike.images import DEFAULT_MAX_PIXELS, Box, ImageInput
from lookalike.results import Hit, SearchResult
from lookalike.storage import AnnotationRecord, ImageRecord

#: Queries served at once, each with a thread per shard (in this process).
_QUERIES_AT_ONCE = 8
#: How often a query gathers the local statistics again while the shards keep changing.
_REFRESHES = 3
#: How many images' shards are remembered (then forgotten all at once).
_OWNERS_KEPT = 100_000
#: Channels whose scores mean the same in a shard as in the whole collection.
MERGEABLE = ("global", "regions", "faces")


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
        self._channels: dict[str, dict[str, Any]] = {}
        self._local_channel: ShardedLocal | None = None
        self._text_channel: ShardedText | None = None
        self._owners: dict[int, int] = {}  # image id -> its shard, as last found
        # The learned ranker every shard shares, read once (as one collection reads its own).
        self._ranker = RankerFile(self.shards.roots[0])

    def __enter__(self) -> ShardedCollection:
        return self.open()

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def channel_names(self) -> list[str]:
        """The shards' channels, in the collection's order."""
        return list(self._channels)

    def open(self) -> ShardedCollection:
        roots = [str(root) for root in self.shards.roots]
        try:
            if self.address is None:
                for root in roots:
                    self._local.append(ShardSearcher(root, self.max_pixels))
                # One pool for the collection's life (a thread keeps its SQLite
                # connections), wide enough for concurrent queries (a server's) to each
                # have a thread per shard, even while one waits for a slow shard.
                self._pool = ThreadPoolExecutor(max_workers=len(roots) * _QUERIES_AT_ONCE,
                                                thread_name_prefix="lookalike-shard")
                identities = [searcher.identity() for searcher in self._local]
            else:
                identities = self._open_actors(roots)
            self._check_alike(identities)
        except BaseException:
            self.close()
            raise
        self._channels = identities[0]["channels"]
        local = self._channels.get("local")
        self._local_channel = None if local is None else ShardedLocal(RankingSettings.of(local))
        text = self._channels.get("text")
        self._text_channel = None if text is None else ShardedText(float(text["semantic_min"]))
        return self

    def _open_actors(self, roots: list[str]) -> list[dict[str, Any]]:
        """A Ray actor per shard, each opening its shard; their identities."""
        ray = connect(None if self.address == "local" else self.address)
        actor = ray.remote(num_cpus=0)(ShardSearcher)
        self._actors = [actor.remote(root, self.max_pixels) for root in roots]
        try:
            identities: list[dict[str, Any]] = ray.get(
                [a.identity.remote() for a in self._actors], timeout=self.timeout_s + 60)
        except ray.exceptions.RayError as error:
            # An actor that could not open its shard: its own error is the last line.
            lines = [line.strip() for line in str(error).splitlines() if line.strip()]
            raise CollectionError(f"{self.shards.root}: a shard did not open on the Ray "
                                  f"cluster: {lines[-1] if lines else summary_of(error)}"
                                  ) from error
        return identities

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
                f"{self.shards.root}: expected shards that read the whitening their collection "
                f"learned, got shards that each learn one (whiten={whiten}); split the "
                "collection again with this version (lookalike shard)")

    def close(self) -> None:
        if self._text_channel is not None:
            self._text_channel.close()
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

    def search(self, query: ImageInput | None = None, *, text: str | None = None, k: int = 10,
               channel: str = "auto", box: Box | None = None,
               fusion: str = DEFAULT_FUSION) -> ShardedResults:
        """The ``k`` images of all the shards most like ``query``, or matching ``text``, or
        both, ranked as one collection with the same images ranks them (see the module's
        doc; the arguments are :meth:`Collection.search`'s)."""
        expect(isinstance(k, int) and k >= 1, f"expected k to be a positive integer, got {k!r}")
        expect(fusion in FUSIONS, f"expected a fusion among {list(FUSIONS)}, got {fusion!r}")
        expect(query is not None or (isinstance(text, str) and bool(text.strip())),
               f"expected a query image, a text or both, got neither (text={text!r})")
        fan = self._fan()
        if query is not None and channel != "auto" and channel not in self._channels:
            raise unknown_channel(channel, self._channels)
        if text is not None and self._text_channel is None:
            raise ValidationError("expected a collection with a 'text' channel for text "
                                  "search, got none; create it with channels including 'text'")
        if text is not None:
            check_text_alone(image=query is not None, channel=channel, box=box)
        sent = None if query is None else self._shared(_as_sent(query))
        ranker = self._ranker
        has_ranker = ranker.exists()  # read once: the whole search uses one policy
        method = auto_fusion().method(has_ranker) if fusion == "auto" else fusion
        if method == "learned":
            ranker.get()  # no trained ranker raises, before any shard is asked
        depth = fusion_depth(k, fused=fuses(channel, image=query is not None,
                                            text=text is not None))
        rankings, records = self._rankings(fan, sent, text, depth, channel, box, has_ranker)
        fused = fuse_rankings(rankings, method, ranker)[:k]
        missing = [hit.image_id for hit in fused if hit.image_id not in records]
        if missing:  # text hits come without their records
            for found in fan.all("records", missing).values():
                records.update(found)
        return ShardedResults(results_of(fused, records), fan.missing)

    def _rankings(self, fan: FanOut, query: Any, text: str | None, k: int, channel: str,
                  box: Box | None, has_ranker: bool
                  ) -> tuple[dict[str, list[Hit]], dict[int, ImageRecord]]:
        """Each channel's ranking of the whole collection, in the order one collection
        makes them (:meth:`Searcher.rankings`), and the records of the images in them."""
        names = self.channel_names if channel == "auto" else [channel]
        left_out = [name for name in names if not auto_fusion().uses(
            name, has_ranker=has_ranker, text_given=text is not None)]
        for _ in range(_REFRESHES):
            try:
                rankings, records = self._ranked(fan, query, text, k, channel, box, left_out)
                if left_out and not rankings:  # as AutoFusion.gather: then the labels count
                    rankings, records = self._ranked(fan, query, text, k, channel, box, [])
                return rankings, records
            except StaleStatistics:  # a shard changed: the query starts again
                continue
        raise CollectionError("the shards' images kept changing while the local channel "
                              "searched them; search again once indexing is done")

    def _ranked(self, fan: FanOut, query: Any, text: str | None, k: int, channel: str,
                box: Box | None, left_out: list[str]
                ) -> tuple[dict[str, list[Hit]], dict[int, ImageRecord]]:
        queries: dict[str, object] = {}
        shared = None
        if query is not None:
            if self._local_channel is not None and channel in ("local", "auto"):
                shared = self._local_channel.share(fan)  # before the vector: weights are in it
            queries = self._encoded(fan, "encode", query, channel, box, left_out,
                                    text is not None)
        searched = {name: encoded for name, encoded in queries.items()
                    if name not in ("local", "text")}
        found: dict[str, list[Hit]] = {}
        records: dict[int, ImageRecord] = {}
        if searched:
            answers = fan.all("search_encoded", self._shared(searched), k)
            for name in searched:
                found[name] = merge([answer.rankings[name] for answer in answers.values()], k)
            records = _records(answers.values())
        for name, encoded in queries.items():
            if name == "local" and self._local_channel is not None and shared is not None:
                hits, seen = self._local_ranking(self._local_channel, fan, encoded, shared, k)
                found["local"], records = hits, {**records, **seen}
            elif name == "text" and isinstance(encoded, TextQuery) and self._text_channel:
                found["text"] = self._text_channel.ranking(fan, encoded, k)
        rankings = {name: found[name] for name in queries if name in found}
        if text is not None and self._text_channel is not None:
            given = self._encoded(fan, "encode_text", text).get("text")
            if isinstance(given, TextQuery):
                rankings["text"] = self._text_channel.ranking(fan, given, k)
        return rankings, records

    @staticmethod
    def _local_ranking(local: ShardedLocal, fan: FanOut, query: object,
                       shared: SharedStatistics, k: int
                       ) -> tuple[list[Hit], dict[int, ImageRecord]]:
        try:
            return local.ranking(fan, query if isinstance(query, LocalQuery) else None,
                                 shared, k)
        except StaleStatistics:
            local.forget(shared)
            raise

    @staticmethod
    def _encoded(fan: FanOut, method: str, *args: Any) -> dict[str, object]:
        """The query as each channel searches it, made once, by the first shard that
        answers (every shard would make the same): ``encode`` for an image, in the order
        of the collection's channels; ``encode_text`` for a text."""
        for shard in fan.alive():
            answers = fan.call(method, {shard: args})
            if shard in answers:
                found = answers[shard]
                return {"text": found} if method == "encode_text" else dict(found)
        return {}

    # -- what a page shows: each image from the shard that holds it -------------------------

    def prepare(self) -> None:
        """Load every shard's models now rather than at the first query."""
        self._everywhere("prepare")

    def count(self) -> int:
        """Indexed images in all the shards."""
        return sum(self._everywhere("count").values())

    def info(self) -> dict[str, Any]:
        """Each shard's :meth:`Collection.info`, and the images of all of them."""
        shards = self._everywhere("info")
        return {"root": str(self.shards.root), "images": sum(i["images"] for i in shards.values()),
                "failed": sum(i["failed"] for i in shards.values()),
                "channels": self.channel_names,
                "shards": {self.shards.names[shard]: info for shard, info in shards.items()}}

    def images(self) -> list[ImageRecord]:
        """The indexed images of all the shards, by id."""
        return sorted((record for records in self._everywhere("images").values()
                       for record in records), key=lambda record: record.id)

    def image(self, image_id: int) -> ImageRecord:
        """An indexed image by id; a :class:`NotFoundError` for any other id."""
        return self._holder(image_id)[1]

    def image_bytes(self, image_id: int) -> bytes:
        """The file of an indexed image, read by its shard (on its node, under Ray)."""
        return bytes(self._on(self._holder(image_id)[0], "image_bytes", image_id))

    def thumbnail(self, image_id: int, size: int = 256) -> bytes:
        return bytes(self._on(self._holder(image_id)[0], "thumbnail", image_id, size))

    def details(self, image_id: int) -> tuple[list[ImageFace], list[AnnotationRecord]]:
        """The faces and the annotations of an indexed image."""
        faces, notes = self._on(self._holder(image_id)[0], "details", image_id)
        return list(faces), list(notes)

    def _holder(self, image_id: int) -> tuple[int, ImageRecord]:
        expect(isinstance(image_id, int) and not isinstance(image_id, bool),
               f"expected an image id as an integer, got {image_id!r}")
        known = self._owners.get(image_id)
        fan = self._fan()
        found = (fan.call("image", {known: (image_id,)}) if known is not None
                 else fan.all("image", image_id))
        for shard, record in found.items():
            if record is not None:
                if len(self._owners) >= _OWNERS_KEPT:
                    self._owners.clear()
                self._owners[image_id] = shard
                return shard, record
        if known is not None:  # gone from the shard it was in: look everywhere again
            self._owners.pop(image_id, None)
            return self._holder(image_id)
        if fan.missing:  # it may be in a shard that did not answer
            raise _unavailable(fan.missing)
        raise NotFoundError(f"expected the id of an indexed image, got {image_id}")

    def _everywhere(self, method: str) -> dict[int, Any]:
        fan = self._fan()
        found = fan.all(method)
        if fan.missing:
            raise _unavailable(fan.missing)
        return found

    def _on(self, shard: int, method: str, *args: Any) -> Any:
        fan = self._fan()
        found = fan.call(method, {shard: args})
        if shard not in found:
            raise _unavailable(fan.missing)
        return found[shard]

    def _fan(self) -> FanOut:
        if not (self._local or self._actors):
            raise LookalikeError("the sharded collection is not open; call open() first")
        return FanOut(self.shards.names, timeout_s=self.timeout_s, searchers=self._local,
                      pool=self._pool, actors=self._actors)

    def _shared(self, value: Any) -> Any:
        """``value`` as sent to every shard: under Ray, one copy in the object store."""
        if not self._actors:
            return value
        import ray

        return ray.put(value)


@dataclass(frozen=True)
class _ShardFilter:
    """Keeps the paths that hash to shard ``index`` of ``count``."""

    index: int
    count: int

    def __call__(self, path: str) -> bool:
        return shard_of(path, self.count) == self.index


def _records(answers: Iterable[ShardAnswer]) -> dict[int, ImageRecord]:
    return {image_id: record for answer in answers
            for image_id, record in answer.records.items()}


def _unavailable(missing: Mapping[str, str]) -> ShardsUnavailableError:
    return ShardsUnavailableError("shards did not answer: " + "; ".join(
        f"{name} ({why})" for name, why in missing.items()))


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


def merge(per_shard: list[list[Hit]], k: int) -> list[Hit]:
    """The best ``k`` of the shards' rankings of one channel, by score (ties by image id,
    unique across the shards of one collection)."""
    return sorted((hit for hits in per_shard for hit in hits),
                  key=lambda hit: (-hit.score, hit.image_id))[:k]


def is_sharded(root: str | os.PathLike[str]) -> bool:
    return (Path(root) / "shards.json").is_file()
