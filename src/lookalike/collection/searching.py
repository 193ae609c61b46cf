"""Searching a collection: each channel's ranking, their fusion, filters, and the results.

A query (an image, a text, or both) is searched by one channel or, with ``auto``, by
every channel the collection has; the rankings are fused (:mod:`lookalike.fusion`, and
the learned ranker of :mod:`lookalike.ranking` when the collection has one); filters keep
some categories, a folder or a date range; the best hit per image becomes a
:class:`~lookalike.results.SearchResult` with its path, its size and its reasons.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import numpy as np

from lookalike.collection.channels import Channel, FindsObjects, TextSearching
from lookalike.collection.filters import SearchFilter
from lookalike.collection.pipeline import decode_min_side
from lookalike.confidence import confidence
from lookalike.errors import (
    CollectionError,
    LookalikeError,
    NothingToSearchError,
    ValidationError,
    expect,
)
from lookalike.fusion import (
    FUSIONS,
    AutoFusion,
    fuses,
    fusion_depth,
    rank_fusion,
    sure_first,
    trusted_fusion,
    weighted_score_fusion,
)
from lookalike.images import Box, ImageInput, crop, load_image
from lookalike.ranking import LearnedRanker
from lookalike.regions import Region
from lookalike.results import FusedEvidence, Hit, SearchResult
from lookalike.storage import Catalog, ImageRecord

RANKER_FILE = "ranker.json"


class RankerFile:
    """The learned ranker saved with a collection (``ranker.json``), read once."""

    def __init__(self, root: Path) -> None:
        self.path = root / RANKER_FILE
        self._ranker: LearnedRanker | None = None

    def exists(self) -> bool:
        return self.path.exists()

    def get(self) -> LearnedRanker:
        if self._ranker is None:
            if not self.exists():
                raise CollectionError("this collection has no learned ranker; train one first "
                                      "(lookalike ranker train, or POST clicks and train "
                                      "with --clicks)")
            self._ranker = LearnedRanker.load(self.path)
        return self._ranker

    def save(self, ranker: LearnedRanker) -> None:
        ranker.save(self.path)
        self._ranker = ranker


class Searcher:
    """Searches the channels of one open collection."""

    def __init__(self, catalog: Catalog, channels: Mapping[str, Channel], *, max_pixels: int,
                 ranker: RankerFile, policy: AutoFusion) -> None:
        self.catalog = catalog
        self.channels = channels
        self.max_pixels = max_pixels
        self.ranker = ranker
        self.policy = policy

    def channel(self, name: str) -> Channel:
        if name not in self.channels:
            raise unknown_channel(name, self.channels)
        return self.channels[name]

    def decode_query(self, query: ImageInput, *, channel: str = "auto", box: Box | None = None,
                     name: str | None = None) -> np.ndarray:
        """``query`` decoded as the channels need it; checks the box against the image."""
        searchers = self._searchers(channel)
        # Decode as indexing did, so a stored image finds itself with the same vector;
        # a box is in full-size pixels, and some channels give evidence in the query's
        # own pixels: then decode at full size.
        full_size = box is not None or decode_min_side(searchers, query=True) is None
        min_side = None if full_size else decode_min_side(list(self.channels.values()))
        image = load_image(query, max_pixels=self.max_pixels, min_side=min_side, name=name)
        if box is not None:
            crop(image, box)  # checks the box against the image before any channel runs
        return image

    def search(self, image: np.ndarray | None, *, text: str | None, k: int, channel: str,
               box: Box | None, filters: SearchFilter | None, fusion: str
               ) -> tuple[list[SearchResult], dict[str, list[Hit]]]:
        """The results and each channel's own ranking (see :meth:`Collection.search`)."""
        expect(isinstance(k, int) and k >= 1, f"expected k to be a positive integer, got {k!r}")
        expect(fusion in FUSIONS, f"expected a fusion among {list(FUSIONS)}, got {fusion!r}")
        has_ranker = self.ranker.exists()  # read once: the whole search uses one policy
        method = self.policy.method(has_ranker) if fusion == "auto" else fusion
        self._check_query(image, text, channel, method, box)
        depth = fusion_depth(k, fused=fuses(channel, image=image is not None,
                                            text=text is not None))
        wanted, total = k, self.catalog.images.count("indexed")
        if filters is not None and filters.active:
            # Never look for more than the filter lets through (and nothing when it is none).
            wanted = min(k, filters.count(self.catalog))
            if wanted == 0:
                return [], {}
        while True:
            def ask(left_out: Sequence[str], depth: int = depth) -> dict[str, list[Hit]]:
                return self.rankings(image, text=text, k=depth, channel=channel, box=box,
                                     skip=left_out)

            rankings = (self.policy.gather(ask, self.channels, has_ranker=has_ranker,
                                           text_given=text is not None)
                        if fusion == "auto" else ask([]))
            fused = self._fuse(rankings, method)
            if filters is not None and filters.active:
                allowed = filters.allowed(self.catalog, [hit.image_id for hit in fused])
                fused = [hit for hit in fused if hit.image_id in allowed]
            longest = max((len(hits) for hits in rankings.values()), default=0)
            # A filter can leave fewer than k: look deeper while the channels have more.
            if len(fused) >= wanted or longest < depth or depth >= total:
                return self.results(fused[:k]), rankings
            depth = min(depth * 4, total)

    def _check_query(self, image: np.ndarray | None, text: str | None, channel: str,
                     method: str, box: Box | None = None) -> None:
        """Refuse what no collection state can serve before a filter can answer 'nothing':
        the same query is refused whatever the filter lets through."""
        expect(image is not None or (isinstance(text, str) and bool(text.strip())),
               f"expected a query image, a text or both, got neither (text={text!r})")
        if image is not None:
            self._searchers(channel)  # an unknown channel raises
        if text is not None:
            check_text_alone(image=image is not None, channel=channel, box=box,
                             text_channel=self._text_searcher().name)
        if method == "learned":
            self.ranker.get()  # no trained ranker raises

    def rankings(self, image: np.ndarray | None, *, text: str | None = None, k: int = 10,
                 channel: str = "auto", box: Box | None = None,
                 skip: Sequence[str] = ()) -> dict[str, list[Hit]]:
        """Each channel's own ranking, before fusion. Under ``auto``, a query with nothing a
        channel searches by (no face) skips that channel, ``skip`` names channels left out,
        and a given text replaces the image's own labels."""
        expect(image is not None or (isinstance(text, str) and bool(text.strip())),
               f"expected a query image, a text or both, got neither (text={text!r})")
        rankings = self.search_encoded(self.encode(image, channel=channel, box=box,
                                                   skip=skip, text_given=text is not None), k)
        if text is not None:
            reader = self._text_searcher()
            rankings[reader.name] = reader.search_text(text, k)  # type: ignore[attr-defined]
        return rankings

    def encode(self, image: np.ndarray | None, *, channel: str = "auto", box: Box | None = None,
               skip: Sequence[str] = (), text_given: bool = False) -> dict[str, object]:
        """The query image as each channel searches it (:meth:`Channel.encode_query`), for
        the channels :meth:`rankings` asks (see there)."""
        queries: dict[str, object] = {}
        if image is None:
            return queries
        nothing: list[NothingToSearchError] = []
        for searcher in self._searchers(channel):
            if channel == "auto" and (searcher.name in skip or (
                    text_given and isinstance(searcher, TextSearching))):
                continue
            try:
                queries[searcher.name] = searcher.encode_query(image, box)
            except NothingToSearchError as error:
                if channel != "auto":
                    raise
                nothing.append(error)
        if nothing and not queries and not skip and not text_given:
            # No channel had anything to search by (a faces-only collection, a photo with no
            # face): say why, as the channel asked alone does, not "no results".
            raise NothingToSearchError("; ".join(str(error) for error in nothing))
        return queries

    def search_encoded(self, queries: Mapping[str, object], k: int) -> dict[str, list[Hit]]:
        """Each channel's ranking of the queries :meth:`encode` made."""
        return {name: self.channel(name).search_encoded(query, k)
                for name, query in queries.items()}

    def fuse(self, rankings: Mapping[str, Sequence[Hit]], fusion: str = "rrf") -> list[Hit]:
        """One ranking from the channels' rankings, by the named fusion; one ranking alone
        keeps its own scores under ``rrf``. Every hit's evidence is nested by channel."""
        return self._fuse(rankings, self.resolved(fusion))

    def _fuse(self, rankings: Mapping[str, Sequence[Hit]], method: str) -> list[Hit]:
        return fuse_rankings(rankings, method, self.ranker)

    def resolved(self, fusion: str) -> str:
        """The fusion ``auto`` stands for here."""
        return self.policy.method(self.ranker.exists()) if fusion == "auto" else fusion

    def results(self, hits: Sequence[Hit]) -> list[SearchResult]:
        """Attach paths to fused hits, keeping the best hit per image."""
        return results_of(hits, self.catalog.images.by_id({hit.image_id for hit in hits}))

    def objects_in(self, image: np.ndarray) -> list[Region]:
        """The objects in ``image`` that a search may be narrowed to (a box each), surest
        first: none without a channel that finds objects."""
        for channel in self.channels.values():
            if isinstance(channel, FindsObjects):
                return channel.objects(image)
        return []

    def _searchers(self, channel: str) -> list[Channel]:
        return list(self.channels.values()) if channel == "auto" else [self.channel(channel)]

    def _text_searcher(self) -> Channel:
        for channel in self.channels.values():
            if isinstance(channel, TextSearching):
                return channel
        raise ValidationError("expected a collection with a 'text' channel for text search, "
                              "got none; create it with channels including 'text'")


def unknown_channel(name: str, channels: Iterable[str]) -> ValidationError:
    """The error for a channel a collection lacks, with how to add it (or, for no kind of
    channel at all, the kinds there are)."""
    # Imported here, on the error path: the registry imports this package's modules.
    from lookalike.collection.registry import CHANNELS

    hint = (f"add it with: lookalike channels add {name} -c COLLECTION, then lookalike "
            "index your folders again (only the new channel is computed)"
            if name in CHANNELS.names() else f"the kinds of channel are {CHANNELS.names()}")
    return ValidationError(f"expected a channel among {[*sorted(channels), 'auto']}, "
                           f"got '{name}'; {hint}")


def check_text_alone(*, image: bool, channel: str, box: Box | None,
                     text_channel: str = "text") -> None:
    """A text without an image is the text channel's to search: a box or another channel
    asked with it is refused rather than ignored."""
    expect(image or channel in ("auto", text_channel),
           f"expected channel 'auto' or '{text_channel}' for a text without an image, "
           f"got '{channel}'")
    expect(image or box is None, f"expected no box for a text without an image, got {box!r}")


def fuse_rankings(rankings: Mapping[str, Sequence[Hit]], method: str,
                  ranker: RankerFile) -> list[Hit]:
    """One ranking from the channels' rankings by ``method`` (rrf, weighted or learned)."""
    if method == "learned":
        return ranker.get().rank(rankings)
    if method == "weighted":
        found = ranker.get() if ranker.exists() else None
        return sure_first(weighted_score_fusion(
            rankings, calibrations=found.calibrations if found else None), rankings)
    if method == "trusted":
        return trusted_fusion(rankings)
    return rank_fusion(rankings)


def results_of(hits: Sequence[Hit], records: Mapping[int, ImageRecord]) -> list[SearchResult]:
    """Fused hits as results, in the fused order (which puts settled matches first, so
    it is not always the order of the scores): the first hit of each image, with its path
    and size from ``records``; an image without an indexed record (a file that failed on
    re-indexing keeps the user's text) is not a result."""
    first: dict[int, Hit] = {}
    for hit in hits:
        first.setdefault(hit.image_id, hit)
    ranked = [(hit, _fused(hit)) for hit in first.values() if hit.image_id in records
              and records[hit.image_id].status == "indexed"]
    return [SearchResult(rank=rank, path=records[hit.image_id].path,
                         score=confidence(evidence), image_id=hit.image_id,
                         evidence=evidence, width=records[hit.image_id].width,
                         height=records[hit.image_id].height, fused_score=hit.score)
            for rank, (hit, evidence) in enumerate(ranked, start=1)]


def _fused(hit: Hit) -> FusedEvidence:
    if not isinstance(hit.evidence, FusedEvidence):
        raise LookalikeError(f"expected a fused hit with evidence by channel, got "
                             f"{type(hit.evidence).__name__}")
    return hit.evidence
