"""The text channel: search images by what is written about them.

Every image's annotations (captions, tags, categories, keywords and descriptions from
people, sidecars and the file itself; ImageNet labels and detected objects from models) are
searched two ways, and the two rankings are fused by reciprocal rank:

* **BM25** (tantivy, a Lucene-style engine, embedded): the words themselves;
* **semantic** (all-MiniLM-L6-v2): every distinct annotation text is embedded once, so
  "kitty" finds images labelled "tabby cat".

The catalog is the source of truth; both structures are caches under ``cache/text`` that
catch up from the catalog's annotation log (see :mod:`lookalike.storage.schema`) and are
rebuilt when in doubt. At index time the channel adds the automatic labels: the top
ImageNet classes of the global model's classifier head. An image query is searched by its
own top labels, which makes text a clue for query-by-example too.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from lookalike.collection.channels import Channel, NoRows
from lookalike.collection.text_index import TEXT_KINDS, TextIndexes
from lookalike.collection.text_reasons import Annotation, explained, words
from lookalike.errors import LookalikeError, ValidationError, expect
from lookalike.extractors import make_extractor
from lookalike.extractors.imagenet import imagenet_classes, top_classes
from lookalike.extractors.onnx import OnnxExtractor
from lookalike.fusion import RRF_K
from lookalike.images import Box, crop
from lookalike.results import Hit, TextEvidence
from lookalike.storage import MODEL_SOURCES, Catalog, Transaction
from lookalike.text import MiniLMEncoder, has_words

TEXT_MODES = ("both", "bm25", "semantic")
# Words that match nearly every caption: BM25 would rank "A windy coast" first for
# "a cup of coffee". Left out of the BM25 query (the sentence encoder sees them all).
STOP_WORDS = frozenset((
    "a", "an", "and", "are", "as", "at", "be", "but", "by", "for", "from", "has", "have", "in",
    "is", "it", "its", "of", "on", "or", "that", "the", "this", "to", "was", "were", "will",
    "with"))


@dataclass(frozen=True)
class TextChannelConfig:
    """Settings of the text channel. ``labels`` ImageNet classes with at least
    ``min_label_score`` probability are stored per image (0 for none); ``semantic`` adds
    all-MiniLM-L6-v2 matching, which counts a text as matching above ``semantic_min``
    cosine similarity; ``query_labels`` of an image query's own classes are its text."""

    extractor: str = "efficientnet-lite0"
    labels: int = 5
    min_label_score: float = 0.05
    semantic: bool = True
    semantic_min: float = 0.45
    query_labels: int = 3

    def __post_init__(self) -> None:
        for name in ("min_label_score", "semantic_min"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ValidationError(f"expected a number for {name}, got {value!r}")
        expect(isinstance(self.semantic, bool),
               f"expected true or false for semantic, got {self.semantic!r}")
        expect(isinstance(self.labels, int) and 0 <= self.labels <= 20,
               f"expected between 0 and 20 labels per image, got {self.labels!r}")
        expect(0.0 <= self.min_label_score <= 1.0,
               f"expected a label probability between 0 and 1, got {self.min_label_score!r}")
        expect(-1.0 <= self.semantic_min <= 1.0,
               f"expected a similarity between -1 and 1, got {self.semantic_min!r}")
        expect(isinstance(self.query_labels, int) and 1 <= self.query_labels <= 20,
               f"expected between 1 and 20 query labels, got {self.query_labels!r}")

    def stored_settings(self) -> dict[str, Any]:
        return {"extractor": self.extractor, "labels": self.labels,
                "min_label_score": self.min_label_score}


class TextChannel(Channel):
    """Annotations searched by BM25 and by sentence embeddings, fused by rank."""

    name = "text"
    reads_annotations = True

    def __init__(self, config: TextChannelConfig, *, extractor: OnnxExtractor | None = None,
                 encoder: MiniLMEncoder | None = None) -> None:
        self.config = config
        made = extractor or make_extractor(config.extractor)
        if not isinstance(made, OnnxExtractor):
            raise LookalikeError(f"expected an ImageNet model for labels, got {config.extractor}")
        self.extractor = made
        self.encoder = encoder or MiniLMEncoder()
        self.codec = NoRows()
        self.indexes = TextIndexes(self.encoder, semantic=config.semantic)

    def manifest(self) -> dict[str, Any]:
        return {**asdict(self.config), **self.model_info()}

    def model_info(self) -> dict[str, Any]:
        return {"extractor_info": self.extractor.info.as_dict(),
                "text_encoder": self.encoder.info if self.config.semantic else None}

    @property
    def min_image_side(self) -> int | None:
        return int(self.extractor.preprocessing.resize_shorter)

    def attach(self, catalog: Catalog, root: Path) -> TextChannel:
        self.indexes.attach(catalog, root)
        return self

    def prepare(self) -> None:
        if self.config.labels:
            self.extractor.load()

    def share_models(self, channels: Mapping[str, Channel]) -> None:
        """Label images from the global channel's pass of the same model.

        The pipeline hands every channel the same batch; with one extractor between them,
        the global channel's embed keeps the class probabilities and :meth:`extract` takes
        them, instead of running the network again (see OnnxExtractor.keep_labels).
        """
        whole = channels.get("global")
        extractor = getattr(whole, "extractor", None)
        if (self.config.labels and isinstance(extractor, OnnxExtractor)
                and extractor.info == self.extractor.info):
            extractor.keep_labels = True
            self.extractor = extractor

    def mark_stale(self) -> None:
        self.indexes.mark_written()

    def save_cache(self) -> None:
        self.indexes.save()

    @property
    def catalog(self) -> Catalog:
        return self.indexes.catalog

    # -- automatic labels -------------------------------------------------------------------

    def extract(self, images: list[np.ndarray]) -> list[np.ndarray]:
        """Each image's top ImageNet classes as (class id, probability) rows."""
        if not self.config.labels:
            return [np.empty((0, 2), dtype=np.float32) for _ in images]
        found = top_classes(self.extractor.classify(images), self.config.labels,
                            self.config.min_label_score)
        return [np.array(rows, dtype=np.float32).reshape(-1, 2) for rows in found]

    def store(self, catalog: Catalog, conn: Transaction, image_id: int,
              extracted: np.ndarray) -> None:
        names = imagenet_classes()
        catalog.annotations.replace(conn, image_id, "imagenet", [
            ("label", names[int(class_id)], float(probability))
            for class_id, probability in extracted])

    # -- searching --------------------------------------------------------------------------

    def query_text(self, image: np.ndarray, box: Box | None = None) -> tuple[str, list[str]]:
        """The text an image query stands for: its own most likely ImageNet classes."""
        names = imagenet_classes()
        (found,) = top_classes(self.extractor.classify([crop(image, box)]),
                               self.config.query_labels, self.config.min_label_score)
        labels = [names[class_id] for class_id, _ in found]
        return " ; ".join(labels), labels

    def search(self, image: np.ndarray, k: int, box: Box | None = None) -> list[Hit]:
        return self.search_encoded(self.encode_query(image, box), k)

    def encode_query(self, image: np.ndarray, box: Box | None = None) -> TextQuery:
        text, labels = self.query_text(image, box)
        return replace(self.encode_text(text), labels=tuple(labels))

    def encode_text(self, text: str, mode: str = "both") -> TextQuery:
        """A text as searched: with its sentence vector when meaning is searched too."""
        expect(isinstance(text, str), f"expected a text query, got {type(text).__name__}")
        expect(mode in TEXT_MODES, f"expected a mode among {list(TEXT_MODES)}, got {mode!r}")
        semantic = self.config.semantic and mode != "bm25" and has_words(text)
        return TextQuery(text, mode=mode, vector=self.encoder.load().encode([text])[0]
                         if semantic else None)

    def search_encoded(self, query: TextQuery, k: int) -> list[Hit]:
        if query.labels is not None and not query.text:
            return []  # an image query with no label sure enough
        expect(bool(query.text.strip()), f"expected a non-empty text query, got {query.text!r}")
        expect(isinstance(k, int) and k >= 1, f"expected k to be a positive integer, got {k!r}")
        self.indexes.sync()
        with self.indexes.lock.reading():
            return rank_text(_OwnTexts(self), query, k, self.config.semantic_min)

    def search_text(self, text: str, k: int, *, mode: str = "both") -> list[Hit]:
        """The ``k`` images whose annotations best match ``text``: by BM25 and meaning
        fused (``mode="both"``), or by one of them (``"bm25"``, ``"semantic"``)."""
        expect(isinstance(text, str) and bool(text.strip()),
               f"expected a non-empty text query, got {text!r}")
        return self.search_encoded(self.encode_text(text, mode), k)

    def stats(self) -> dict[str, Any]:
        annotations, images = self.catalog.annotations.counts()
        return {"annotations": annotations, "annotated_images": images,
                "labels_per_image": self.config.labels, "semantic": self.config.semantic}


@dataclass(frozen=True)
class TextQuery:
    """A text as the text channel searches it: the words, the sentence vector (when meaning
    is searched), and for an image query the labels the text is made of."""

    text: str
    mode: str = "both"
    vector: np.ndarray | None = None
    labels: tuple[str, ...] | None = None


class TextSources(Protocol):
    """What :func:`rank_text` asks of the annotations: of one collection
    (:class:`_OwnTexts`), or of every shard of a split one (``sharded_text``)."""

    def lexical(self, query: str, depth: int) -> list[tuple[int, float]]:
        """The ``depth`` best (image id, BM25 score), best first."""
        ...

    def text_vectors(self) -> tuple[list[str], np.ndarray]:
        """Every distinct annotation text and its sentence vector."""
        ...

    def images_with_texts(self, texts: Sequence[str]) -> list[tuple[int, str, float | None, str]]:
        """(image id, text, score, source) of every annotation whose text is one of them."""
        ...

    def annotations_of(self, image_ids: Sequence[int]) -> dict[int, list[Annotation]]:
        """Each image's searchable annotations as (kind, text, score, source)."""
        ...


def rank_text(sources: TextSources, query: TextQuery, k: int, semantic_min: float) -> list[Hit]:
    """BM25 and meaning, each searched to a depth, fused by reciprocal rank."""
    depth = max(4 * k, 50)
    lexical = (sources.lexical(_without_stop_words(query.text), depth)
               if query.mode != "semantic" else [])
    semantic = (_semantic(sources, query.vector, depth, semantic_min)
                if query.vector is not None else [])
    hits = _fuse(lexical, semantic)[:k]
    # Only a search by words may quote a text for sharing a word with the query.
    shared = words(_without_stop_words(query.text)) if lexical else frozenset()
    hits = explained(hits, sources.annotations_of([hit.image_id for hit in hits]), shared)
    if query.labels is None:
        return hits
    return [Hit(hit.image_id, hit.score, TextEvidence(
        **{**hit.evidence.as_dict(), "query_labels": list(query.labels)})) for hit in hits]


def _semantic(sources: TextSources, query: np.ndarray, depth: int, semantic_min: float
              ) -> list[tuple[int, float, str]]:
    """(image id, score, matched text), best first (ties by image id): the image's best
    text similarity, weighted by the label's probability for automatic labels."""
    texts, vectors = sources.text_vectors()
    if not texts:
        return []
    similarity = vectors @ query
    close = np.flatnonzero(similarity >= semantic_min)
    close = close[np.argsort(-similarity[close], kind="stable")][:512]
    if not len(close):
        return []
    by_text = {texts[i]: float(similarity[i]) for i in close}
    best: dict[int, tuple[float, str]] = {}
    for image_id, matched, score, source in sources.images_with_texts(list(by_text)):
        weight = float(score) if source in MODEL_SOURCES and score is not None else 1.0
        value = by_text[matched] * weight
        known = best.get(image_id)
        # The same text twice, or two texts alike: the one kept must not depend on row order.
        if known is None or (value, known[1]) > (known[0], matched):
            best[image_id] = (value, matched)
    ranked = sorted(best.items(), key=lambda item: (-item[1][0], item[0]))[:depth]
    return [(image_id, value, matched) for image_id, (value, matched) in ranked]


class _OwnTexts:
    """The annotations of the collection the text channel belongs to."""

    def __init__(self, channel: TextChannel) -> None:
        self.channel = channel

    def lexical(self, query: str, depth: int) -> list[tuple[int, float]]:
        return self.channel.indexes.fulltext().search(query, depth)

    def text_vectors(self) -> tuple[list[str], np.ndarray]:
        return self.channel.indexes.texts, self.channel.indexes.text_vectors

    def images_with_texts(self, texts: Sequence[str]) -> list[tuple[int, str, float | None, str]]:
        return self.channel.catalog.annotations.images_with_texts(texts, TEXT_KINDS)

    def annotations_of(self, image_ids: Sequence[int]) -> dict[int, list[Annotation]]:
        return searchable_annotations(self.channel.catalog, image_ids)


def searchable_annotations(catalog: Catalog, image_ids: Sequence[int]
                           ) -> dict[int, list[Annotation]]:
    """Each image's annotations the text channel searches, as (kind, text, score, source)."""
    return {image_id: [(row.kind, row.text, row.score, row.source) for row in rows
                       if row.kind in TEXT_KINDS]
            for image_id, rows in catalog.annotations.of_images(image_ids).items()}


def _without_stop_words(text: str) -> str:
    words = text.split()
    kept = [word for word in words if word.casefold() not in STOP_WORDS]
    return " ".join(kept) if kept else text


def _fuse(lexical: Sequence[tuple[int, float]],
          semantic: Sequence[tuple[int, float, str]]) -> list[Hit]:
    """BM25 and semantic rankings fused by reciprocal rank; each keeps its own score."""
    fused: dict[int, float] = {}
    evidence: dict[int, dict[str, Any]] = {}
    for rank, (image_id, score) in enumerate(lexical, start=1):
        fused[image_id] = fused.get(image_id, 0.0) + 1.0 / (RRF_K + rank)
        evidence.setdefault(image_id, {})["bm25"] = round(score, 4)
    for rank, (image_id, score, matched) in enumerate(semantic, start=1):
        fused[image_id] = fused.get(image_id, 0.0) + 1.0 / (RRF_K + rank)
        evidence.setdefault(image_id, {}).update(semantic=round(score, 4), matched=matched)
    order = sorted(fused, key=lambda image_id: -fused[image_id])
    return [Hit(image_id, fused[image_id], TextEvidence(**evidence[image_id]))
            for image_id in order]


def describe(stats: Mapping[str, Any]) -> str:
    """One line about a text channel, from its manifest entry and :meth:`stats`."""
    return (f"{stats['annotations']} annotations on {stats['annotated_images']} images (top "
            f"{stats['labels']} ImageNet labels of {stats['extractor']}), BM25 (tantivy)"
            + (" + all-MiniLM-L6-v2" if stats["semantic"] else ""))
