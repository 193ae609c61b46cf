"""The text channel across the shards of a split collection, ranked as the whole ranks.

BM25's document frequencies and field lengths count every image of the collection, and
the meaning search caps the texts it matches over all of them. The annotations are small
(tens of bytes per image against kilobytes of vectors), so the searching process builds
one full-text index over the documents of every shard, with the same engine and settings
as one collection's, and merges the shards' distinct texts and their sentence vectors; the
images that carry a matched text are asked of the shards. The ranking is the one
collection's (:func:`lookalike.collection.text_channel.rank_text`).

The index is built at the first text search after the shards are opened, and again when a
shard's annotations change (each shard's annotation revision is checked per search). At a
billion images this index would move to a full-text engine that shares its statistics
itself (``docs/scale-out.md``).
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from lookalike.collection.fanout import FanOut
from lookalike.collection.text_channel import TextQuery, rank_text
from lookalike.collection.text_reasons import Annotation
from lookalike.errors import CollectionError, ShardsUnavailableError
from lookalike.results import Hit
from lookalike.text import FullTextIndex, TextDocument
from lookalike.text.encoder import DIM


class ShardTexts:
    """The annotations of every shard, as :func:`rank_text` asks for them."""

    def __init__(self, fan: FanOut, index: FullTextIndex, texts: list[str],
                 vectors: np.ndarray) -> None:
        self.fan = fan
        self.index = index
        self.texts = texts
        self.vectors = vectors

    def lexical(self, query: str, depth: int) -> list[tuple[int, float]]:
        return self.index.search(query, depth)

    def text_vectors(self) -> tuple[list[str], np.ndarray]:
        return self.texts, self.vectors

    def images_with_texts(self, texts: Sequence[str]) -> list[tuple[int, str, float | None, str]]:
        found = self.fan.all("images_with_texts", list(texts))
        return [row for shard in sorted(found) for row in found[shard]]

    def annotations_of(self, image_ids: Sequence[int]) -> dict[int, list[Annotation]]:
        found = self.fan.all("annotations_of", [int(i) for i in image_ids])
        return {image_id: rows for shard in sorted(found)
                for image_id, rows in found[shard].items()}


class ShardedText:
    """The split collection's text search: one index over every shard's documents."""

    def __init__(self, semantic_min: float) -> None:
        self.semantic_min = semantic_min
        self._folder: Path | None = None
        self._index: FullTextIndex | None = None
        self._texts: list[str] = []
        self._vectors = np.empty((0, DIM), dtype=np.float32)
        self._revisions: dict[int, int] | None = None

    def ranking(self, fan: FanOut, query: TextQuery, k: int) -> list[Hit]:
        """The text channel's ``k`` best for ``query`` (made by one shard)."""
        if query.labels is not None and not query.text:
            return []  # an image query with no label sure enough
        revisions = self._current(fan)
        if self._index is None or revisions != self._revisions:
            self._build(fan, revisions)
        if self._index is None:
            raise CollectionError("the text index of the shards was not built")
        return rank_text(ShardTexts(fan, self._index, self._texts, self._vectors), query, k,
                         self.semantic_min)

    @staticmethod
    def _current(fan: FanOut) -> dict[int, int]:
        revisions = fan.all("text_revision")
        if fan.missing:
            raise ShardsUnavailableError(
                "expected every shard to answer a text search, got none from "
                + "; ".join(f"{name} ({why})" for name, why in fan.missing.items())
                + "; BM25 cannot weigh words without every shard's documents")
        return {shard: int(revision) for shard, revision in revisions.items()}

    def _build(self, fan: FanOut, revisions: dict[int, int]) -> None:
        parts = fan.all("text_part")
        # In image id order, as one collection's index is first built.
        documents = sorted((TextDocument(image_id, fields) for shard in sorted(parts)
                            for image_id, fields in parts[shard][0]),
                           key=lambda document: document.image_id)
        self.close()
        self._folder = Path(tempfile.mkdtemp(prefix="lookalike-shards-text-"))
        index = FullTextIndex(self._folder).open()
        index.write(documents, [], {"shards": len(parts)})
        texts: dict[str, np.ndarray] = {}
        for shard in sorted(parts):
            for text, vector in zip(parts[shard][1], parts[shard][2], strict=True):
                texts.setdefault(text, vector)
        self._texts = list(texts)
        self._vectors = (np.stack(list(texts.values())).astype(np.float32) if texts
                         else np.empty((0, DIM), dtype=np.float32))
        self._index, self._revisions = index, revisions

    def close(self) -> None:
        if self._index is not None:
            self._index.close()
            self._index = None
        if self._folder is not None:
            shutil.rmtree(self._folder, ignore_errors=True)
            self._folder = None
