"""The text channel: search images by what is written about them.

Every image's annotations (captions, tags, categories, keywords and descriptions from
people, sidecars and the file itself; ImageNet labels and detected objects from models) are
searched two ways, and the two rankings are fused by reciprocal rank:

* **BM25** (tantivy, a Lucene-style engine, embedded): the words themselves;
* **semantic** (all-MiniLM-L6-v2): every distinct annotation text is embedded once, so
  "kitty" finds images labelled "tabby cat".

The catalog is the source of truth; both structures are caches under ``cache/text`` that
catch up from the catalog's annotation log (see :mod:`lookalike.collection.catalog`) and are
rebuilt when in doubt. At index time the channel adds the automatic labels: the top
ImageNet classes of the global model's classifier head. An image query is searched by its
own top labels, which makes text a clue for query-by-example too.
"""

from __future__ import annotations

import io
import sqlite3
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from lookalike.collection.catalog import MODEL_SOURCES, Catalog
from lookalike.collection.channels import Channel, Hit
from lookalike.errors import LookalikeError, ValidationError, expect
from lookalike.extractors import make_extractor
from lookalike.extractors.imagenet import imagenet_classes, top_classes
from lookalike.extractors.onnx import OnnxExtractor
from lookalike.fusion import RRF_K
from lookalike.images import Box, crop
from lookalike.paths import atomic_write_bytes
from lookalike.text import FullTextIndex, MiniLMEncoder, TextDocument
from lookalike.text.encoder import DIM

# Annotation kind -> full-text field. "taken" (a date) is for filters, not words.
FIELD_OF_KIND = {"caption": "caption", "tag": "tags", "category": "categories",
                 "keyword": "keywords", "description": "description", "label": "labels",
                 "object": "objects"}
TEXT_KINDS = tuple(FIELD_OF_KIND)
TEXT_REVISION_KEY = "text_index_revision"
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

    def __init__(self, config: TextChannelConfig, *, extractor: OnnxExtractor | None = None,
                 encoder: MiniLMEncoder | None = None) -> None:
        self.config = config
        made = extractor or make_extractor(config.extractor)
        if not isinstance(made, OnnxExtractor):
            raise LookalikeError(f"expected an ImageNet model for labels, got {config.extractor}")
        self.extractor = made
        self.encoder = encoder or MiniLMEncoder()
        self._catalog: Catalog | None = None
        self._folder: Path | None = None
        self._fulltext: FullTextIndex | None = None
        self._texts: list[str] = []
        self._text_vectors = np.empty((0, DIM), dtype=np.float32)
        self._semantic_dirty = False
        self._written_here = False  # this session changed the catalog
        # The catalog's annotation revision the indexes reflect; any change to any image's
        # text (here or in another process) moves the catalog's revision past it.
        self._applied = -1

    def manifest(self) -> dict[str, Any]:
        return {**asdict(self.config), **self.model_info()}

    def model_info(self) -> dict[str, Any]:
        return {"extractor_info": self.extractor.info.as_dict(),
                "text_encoder": self.encoder.info if self.config.semantic else None}

    @property
    def min_image_side(self) -> int | None:
        return int(self.extractor.preprocessing.resize_shorter)

    def load(self, catalog: Catalog, root: Path) -> TextChannel:
        self._catalog = catalog
        self._folder = root / "cache" / "text"
        self._fulltext = FullTextIndex(self._folder / "fulltext")
        self._applied = -1
        return self

    def prepare(self) -> None:
        if self.config.labels:
            self.extractor.load()

    def mark_stale(self) -> None:
        # Staleness itself shows in the catalog's annotation revision; what matters here is
        # that this session wrote, so closing it brings the caches up to date.
        self._written_here = True

    @property
    def catalog(self) -> Catalog:
        if self._catalog is None:
            raise LookalikeError("the text channel is not loaded; open its collection first")
        return self._catalog

    # -- automatic labels -------------------------------------------------------------------

    def extract(self, images: list[np.ndarray]) -> list[np.ndarray]:
        """Each image's top ImageNet classes as (class id, probability) rows."""
        if not self.config.labels:
            return [np.empty((0, 2), dtype=np.float32) for _ in images]
        found = top_classes(self.extractor.classify(images), self.config.labels,
                            self.config.min_label_score)
        return [np.array(rows, dtype=np.float32).reshape(-1, 2) for rows in found]

    def is_blank(self, extracted: np.ndarray) -> bool:
        return False  # an image with no confident label is still a searchable image

    def store(self, catalog: Catalog, conn: sqlite3.Connection, image_id: int,
              extracted: np.ndarray) -> None:
        names = imagenet_classes()
        catalog.replace_annotations(conn, image_id, "imagenet", [
            ("label", names[int(class_id)], float(probability))
            for class_id, probability in extracted])

    # -- keeping the derived indexes in step ------------------------------------------------

    def _sync(self) -> None:
        if self.catalog.annotation_revision() == self._applied:
            return
        self._applied = self._sync_fulltext()
        if self.config.semantic:
            self._sync_semantic()

    def _sync_fulltext(self) -> int:
        """Bring the BM25 index up to the catalog's text; returns the revision it reflects."""
        index = self._index()
        catalog = self.catalog
        revision = catalog.annotation_revision()
        state = index.state()
        # The catalog keeps its own note of the revision the index reached, written after
        # each index commit. A catalog restored from a backup (or one that lost its last
        # commits) has an older note than the index: the same revision numbers may now
        # mean other edits, so only a rebuild is safe. So is a crash between the two writes.
        noted = catalog.meta(TEXT_REVISION_KEY)
        if (state is None or state.get("catalog_id") != catalog.catalog_id
                or noted is None or int(state.get("revision", -1)) != int(noted)):
            index.clear()
            changed = catalog.annotated_images()
        else:
            applied = int(state["revision"])
            if applied == revision:
                return revision
            changed = catalog.annotated_since(applied)
        upserts, deletes = self._documents(changed)
        index.write(upserts, deletes, {"catalog_id": catalog.catalog_id, "revision": revision})
        catalog.set_meta(TEXT_REVISION_KEY, str(revision))
        return revision

    def _documents(self, image_ids: list[int]) -> tuple[list[TextDocument], list[int]]:
        annotations = self.catalog.annotations_of(image_ids)
        upserts, deletes = [], []
        for image_id in image_ids:
            fields: dict[str, list[str]] = {}
            for item in annotations.get(image_id, []):
                if item.kind in FIELD_OF_KIND:
                    fields.setdefault(FIELD_OF_KIND[item.kind], []).append(item.text)
            if fields:
                upserts.append(TextDocument(image_id, {name: " ; ".join(texts)
                                                       for name, texts in fields.items()}))
            else:
                deletes.append(image_id)
        return upserts, deletes

    def _index(self) -> FullTextIndex:
        if self._fulltext is None:
            raise LookalikeError("the text channel is not loaded; open its collection first")
        return self._fulltext.open()

    def _semantic_path(self) -> Path:
        if self._folder is None:
            raise LookalikeError("the text channel is not loaded; open its collection first")
        return self._folder / "semantic.npz"

    def _sync_semantic(self) -> None:
        if not self._texts:
            self._texts, self._text_vectors = _read_semantic(self._semantic_path(),
                                                             self.encoder.info)
        wanted = self.catalog.distinct_texts(TEXT_KINDS)
        have = set(self._texts)
        new = [text for text in wanted if text not in have]
        if not new and len(wanted) == len(self._texts):
            return
        keep = set(wanted)
        rows = [i for i, text in enumerate(self._texts) if text in keep]
        vectors = self.encoder.load().encode(new) if new else np.empty((0, DIM), np.float32)
        self._texts = [self._texts[i] for i in rows] + new
        self._text_vectors = np.concatenate([self._text_vectors[rows], vectors])
        self._semantic_dirty = True

    def save_cache(self) -> None:
        if self._catalog is None:
            return
        if self._written_here:
            # A read-only session (info, a search) must not pay for reading every text.
            self._sync()
        if self._semantic_dirty:
            encoded = [text.encode("utf-8", "surrogatepass") for text in self._texts]
            buffer = io.BytesIO()
            # Joined bytes and lengths: a fixed-width string array is as wide as the
            # longest text, times every text.
            np.savez(buffer, text_bytes=np.frombuffer(b"".join(encoded), dtype=np.uint8),
                     text_lengths=np.array([len(e) for e in encoded], dtype=np.int64),
                     vectors=self._text_vectors, encoder=np.array(self.encoder.info["name"]))
            atomic_write_bytes(self._semantic_path(), buffer.getvalue())
            self._semantic_dirty = False
        if self._written_here and self._applied > 0:
            # The index has applied the log up to here; the entries are no longer needed.
            self.catalog.forget_annotation_log(self._applied)

    # -- searching --------------------------------------------------------------------------

    def embed_query(self, image: np.ndarray) -> np.ndarray:
        """The query's ImageNet class probabilities, (1, 1000): what its labels come from."""
        return self.extractor.classify([image])

    def query_text(self, image: np.ndarray, box: Box | None = None) -> tuple[str, list[str]]:
        """The text an image query stands for: its own most likely ImageNet classes."""
        names = imagenet_classes()
        (found,) = top_classes(self.extractor.classify([crop(image, box)]),
                               self.config.query_labels, self.config.min_label_score)
        labels = [names[class_id] for class_id, _ in found]
        return " ; ".join(labels), labels

    def search(self, image: np.ndarray, k: int, box: Box | None = None) -> list[Hit]:
        text, labels = self.query_text(image, box)
        if not text:
            return []
        return [Hit(hit.image_id, hit.score, {**hit.evidence, "query_labels": labels})
                for hit in self.search_text(text, k)]

    def search_text(self, text: str, k: int, *, mode: str = "both") -> list[Hit]:
        """The ``k`` images whose annotations best match ``text``: by BM25 and meaning
        fused (``mode="both"``), or by one of them (``"bm25"``, ``"semantic"``)."""
        expect(isinstance(text, str) and bool(text.strip()),
               f"expected a non-empty text query, got {text!r}")
        expect(isinstance(k, int) and k >= 1, f"expected k to be a positive integer, got {k!r}")
        expect(mode in TEXT_MODES, f"expected a mode among {list(TEXT_MODES)}, got {mode!r}")
        self._sync()
        depth = max(4 * k, 50)
        lexical = (self._index().search(_without_stop_words(text), depth)
                   if mode != "semantic" else [])
        semantic = (self._semantic(text, depth)
                    if self.config.semantic and mode != "bm25" else [])
        return _fuse(lexical, semantic)[:k]

    def _semantic(self, text: str, depth: int) -> list[tuple[int, float, str]]:
        """(image id, score, matched text), best first: the image's best text similarity,
        weighted by the label's probability for automatic labels."""
        if not self._texts:
            return []
        query = self.encoder.load().encode([text])[0]
        similarity = self._text_vectors @ query
        close = np.flatnonzero(similarity >= self.config.semantic_min)
        close = close[np.argsort(-similarity[close])][:512]
        if not len(close):
            return []
        by_text = {self._texts[i]: float(similarity[i]) for i in close}
        best: dict[int, tuple[float, str]] = {}
        for image_id, matched, score, source in self.catalog.images_with_texts(by_text,
                                                                               TEXT_KINDS):
            weight = float(score) if source in MODEL_SOURCES and score is not None else 1.0
            value = by_text[matched] * weight
            if image_id not in best or value > best[image_id][0]:
                best[image_id] = (value, matched)
        ranked = sorted(best.items(), key=lambda item: -item[1][0])[:depth]
        return [(image_id, value, matched) for image_id, (value, matched) in ranked]

    def stats(self) -> dict[str, Any]:
        row = self.catalog.conn.execute(
            "SELECT COUNT(*), COUNT(DISTINCT image_id) FROM annotations").fetchone()
        return {"annotations": int(row[0]), "annotated_images": int(row[1]),
                "labels_per_image": self.config.labels, "semantic": self.config.semantic}


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
    return [Hit(image_id, fused[image_id], evidence[image_id]) for image_id in order]


def _read_semantic(path: Path, info: dict[str, Any]) -> tuple[list[str], np.ndarray]:
    """The cached text vectors, or nothing when missing, damaged or from another model."""
    empty: tuple[list[str], np.ndarray] = ([], np.empty((0, DIM), dtype=np.float32))
    if not path.is_file():
        return empty
    try:
        with np.load(path, allow_pickle=False) as data:
            if str(data["encoder"]) != info["name"]:
                return empty
            joined = data["text_bytes"].tobytes()
            ends = np.cumsum(data["text_lengths"])
            starts = ends - data["text_lengths"]
            texts = [joined[a:b].decode("utf-8", "surrogatepass")
                     for a, b in zip(starts.tolist(), ends.tolist(), strict=True)]
            vectors = np.asarray(data["vectors"], dtype=np.float32)
    except (OSError, ValueError, KeyError, UnicodeDecodeError):
        return empty
    if vectors.shape != (len(texts), DIM):
        return empty
    return texts, vectors
