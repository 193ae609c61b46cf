"""One shard of a split collection, as a sharded search asks it: in this process, or as the
Ray actor that holds the shard's indexes in memory on whichever node Ray puts it.

Every method answers one step of a sharded search (:mod:`lookalike.collection.sharded`):
one shard decodes the query and makes what each channel searches by
(:meth:`ShardSearcher.encode`: a vector, or the local channel's keypoints); the channels
whose scores mean the same in a shard as in the whole rank each shard's images by it
(:meth:`ShardSearcher.search_encoded`); the local channel is searched step by step
(:mod:`lookalike.collection.sharded_local`), weighed with the statistics of every shard
and each candidate verified where its keypoints live. The records of every image named in
an answer come with it, so that the results need no further round trip.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from lookalike.collection.collection import Collection
from lookalike.collection.local_channel import LocalChannel
from lookalike.collection.local_ranking import LocalQuery, OneCorpus, SparseVector, TreeQuery
from lookalike.collection.people import ImageFace
from lookalike.collection.searching import RANKER_FILE
from lookalike.collection.text_channel import TextChannel, TextQuery, searchable_annotations
from lookalike.collection.text_index import TEXT_KINDS
from lookalike.collection.text_reasons import Annotation
from lookalike.errors import LookalikeError, NotFoundError
from lookalike.images import DEFAULT_MAX_PIXELS, Box, ImageInput
from lookalike.local.inverted import CorpusStatistics
from lookalike.results import Hit
from lookalike.storage import AnnotationRecord, ImageRecord

#: What a local answer is valid for (:meth:`ShardSearcher._version`).
Version = tuple[str | None, int, int | None]
#: What every shard must share with the others for their scores to compare.
SHARED_META = ("regions.projection", "local.vocabulary_id")


@dataclass(frozen=True)
class ShardAnswer:
    """Rankings (or a local step's hits) and the records of the images they name."""

    rankings: dict[str, list[Hit]] = field(default_factory=dict)
    records: dict[int, ImageRecord] = field(default_factory=dict)


@dataclass(frozen=True)
class LocalTop:
    """A shard's best images for a weighted query vector, their records, and the version
    of its inverted files (which moves when its images change)."""

    hits: list[tuple[int, float]]
    records: dict[int, ImageRecord]
    version: Version


class ShardSearcher:
    """One shard's collection, opened once (see the module's doc)."""

    def __init__(self, root: str, max_pixels: int = DEFAULT_MAX_PIXELS) -> None:
        self.collection = Collection(root, max_pixels=max_pixels).open(create=False)
        self.searcher = self.collection.searcher()

    def identity(self) -> dict[str, Any]:
        """What must be the same in every shard: the manifest and the learned files."""
        catalog = self.collection.catalog
        ranker = self.collection.root / RANKER_FILE
        return {"channels": {name: channel.manifest()
                             for name, channel in self.collection.channels.items()},
                **{key: catalog.meta(key) for key in SHARED_META},
                "ranker": (hashlib.sha256(ranker.read_bytes()).hexdigest()
                           if ranker.is_file() else None)}

    def encode(self, query: ImageInput, channel: str, box: Box | None,
               skip: Sequence[str], text_given: bool = False) -> dict[str, object]:
        """The query as each channel searches it (its vector; the local channel's keypoints,
        words and weighted vector), made once here for every shard: decoded as the one
        collection decodes it, for the channels it would search (``skip``: left out under
        ``auto``)."""
        image = self.searcher.decode_query(query, channel=channel, box=box)
        queries = ({} if channel == "local" else
                   self.searcher.encode(image, channel=channel, box=box, skip=[*skip, "local"],
                                        text_given=text_given))
        if "local" in self.collection.channels and (
                channel == "local" or (channel == "auto" and "local" not in skip)):
            queries["local"] = self._local().query(image, box)
        # In the collection's order of channels, which fusion sums in.
        return {name: queries[name] for name in self.collection.channels if name in queries}

    def search_encoded(self, queries: dict[str, object], k: int) -> ShardAnswer:
        """Each channel's own ranking of this shard's images for the queries :meth:`encode`
        made (cosine channels only: the local and text channels go step by step)."""
        rankings = self.searcher.search_encoded(queries, k)
        return ShardAnswer(rankings, self._records(hit.image_id for hits in rankings.values()
                                                   for hit in hits))

    # -- the text channel ----------------------------------------------------------------

    def encode_text(self, text: str) -> TextQuery:
        """A text the user gave, as the text channel searches it (with its vector)."""
        return self._text().encode_text(text)

    def text_revision(self) -> int:
        """Moves with every change of this shard's annotations."""
        return self._text().catalog.annotations.revision()

    def text_part(self) -> tuple[list[tuple[int, dict[str, str]]], list[str], np.ndarray]:
        """This shard's full-text documents (image id and fields: plain values, to cross
        processes), and its distinct texts with their vectors."""
        indexes = self._text().indexes
        indexes.sync()
        with indexes.lock.reading():
            documents = [(document.image_id, dict(document.fields))
                         for document in indexes.documents()]
            return documents, list(indexes.texts), indexes.text_vectors.copy()

    def images_with_texts(self, texts: list[str]) -> list[tuple[int, str, float | None, str]]:
        return self._text().catalog.annotations.images_with_texts(texts, TEXT_KINDS)

    def annotations_of(self, image_ids: list[int]) -> dict[int, list[Annotation]]:
        """The searchable annotations of those of ``image_ids`` this shard holds."""
        return searchable_annotations(self._text().catalog, image_ids)

    def _text(self) -> TextChannel:
        channel = self.collection.channels.get("text")
        if not isinstance(channel, TextChannel):
            raise LookalikeError(f"{self.collection.root}: this shard has no text channel")
        return channel

    # -- the local channel, step by step ---------------------------------------------------

    def local_statistics(self) -> tuple[CorpusStatistics, int]:
        """This shard's own statistics of the local channel, and the revision of its
        images they are of."""
        channel = self._local()
        corpus = self._corpus(channel)
        with channel.inverted.lock.reading():
            statistics = (corpus.index.document_frequency() if corpus is not None
                          else CorpusStatistics.total([]))
            return statistics, channel.inverted.revision

    def use_local_corpus(self, corpus: CorpusStatistics | None, token: int | None) -> Version:
        """Weigh by the statistics of every shard (``token`` names them); returns this
        shard's version after."""
        channel = self._local()
        channel.inverted.use_corpus(corpus, token)
        return self._version(channel)

    def local_top(self, query: TreeQuery, n: int) -> LocalTop:
        channel = self._local()
        corpus = self._corpus(channel)
        if corpus is None:
            return LocalTop([], {}, self._version(channel))
        with channel.inverted.lock.reading():
            hits = corpus.top(query, n)
            version = self._version(channel)
        return LocalTop(hits, self._records(image_id for image_id, _ in hits), version)

    def local_verify(self, query: LocalQuery, candidates: list[tuple[int, float]]
                     ) -> tuple[list[Hit], Version]:
        channel = self._local()
        return channel.verify(query, candidates), self._version(channel)

    def local_vectors(self, image_ids: list[int]) -> tuple[list[SparseVector], Version]:
        channel = self._local()
        corpus = self._corpus(channel)
        if corpus is None:
            raise LookalikeError("this shard has no local vectors yet")
        with channel.inverted.lock.reading():
            return corpus.stored_vectors(image_ids), self._version(channel)

    def _local(self) -> LocalChannel:
        channel = self.collection.channels.get("local")
        if not isinstance(channel, LocalChannel):
            raise LookalikeError(f"{self.collection.root}: this shard has no local channel")
        return channel

    @staticmethod
    def _corpus(channel: LocalChannel) -> OneCorpus | None:
        channel.prepare()
        index = channel.inverted.synced(channel.catalog, channel.tree)
        return None if index is None else OneCorpus(channel, index)

    @staticmethod
    def _version(channel: LocalChannel) -> Version:
        """What a local answer is valid for: the tree, the images held (their revision),
        and the statistics they are weighed by."""
        return ((None if channel.tree is None else channel.tree.id), channel.inverted.revision,
                channel.inverted.corpus_token)

    # -- what a page shows of an image --------------------------------------------------------

    def prepare(self) -> None:
        self.collection.prepare()

    def count(self) -> int:
        return self.collection.count()

    def info(self) -> dict[str, Any]:
        return self.collection.info()

    def images(self) -> list[ImageRecord]:
        return self.collection.images()

    def image(self, image_id: int) -> ImageRecord | None:
        """The indexed image with this id, if this shard holds it."""
        try:
            return self.collection.image(image_id)
        except NotFoundError:
            return None

    def image_bytes(self, image_id: int) -> bytes:
        return self.collection.image_file(image_id).read_bytes()

    def thumbnail(self, image_id: int, size: int) -> bytes:
        return self.collection.thumbnail(image_id, size)

    def details(self, image_id: int) -> tuple[list[ImageFace], list[AnnotationRecord]]:
        return self.collection.faces_of(image_id), self.collection.annotations.of(image_id)

    def records(self, image_ids: list[int]) -> dict[int, ImageRecord]:
        """The records of those of ``image_ids`` that this shard holds."""
        return self._records(image_ids)

    def _records(self, image_ids: Any) -> dict[int, ImageRecord]:
        return self.collection.catalog.images.by_id(set(image_ids))

    def close(self) -> None:
        self.collection.close()
