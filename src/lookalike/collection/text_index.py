"""The text channel's derived indexes: BM25 (tantivy) and the sentence vectors of every
distinct annotation text, both under ``cache/text``, both following the catalog.

Triggers log every change of an image's text in the catalog; the full-text index applies
the log since the revision it recorded (committed in tantivy first, then the revision
written atomically beside it; applying twice is harmless). The catalog notes the revision
the index reached; an index whose revision differs from that note (a catalog restored from
a backup, a crash between the two writes), or one that is missing or foreign, is rebuilt.
Semantic search embeds each distinct text once (labels repeat across images) and keeps the
vectors in ``semantic.npz``.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np

from lookalike.concurrency import ReadWriteLock
from lookalike.errors import LookalikeError
from lookalike.paths import atomic_write_bytes
from lookalike.storage import Catalog
from lookalike.text import FullTextIndex, MiniLMEncoder, TextDocument
from lookalike.text.encoder import DIM

# Annotation kind -> full-text field. "taken" (a date) is for filters, not words.
FIELD_OF_KIND = {"caption": "caption", "tag": "tags", "category": "categories",
                 "keyword": "keywords", "description": "description", "label": "labels",
                 "object": "objects"}
TEXT_KINDS = tuple(FIELD_OF_KIND)
TEXT_REVISION_KEY = "text_index_revision"


class TextIndexes:
    """BM25 and semantic indexes over a collection's annotations."""

    def __init__(self, encoder: MiniLMEncoder, *, semantic: bool) -> None:
        self.encoder = encoder
        self.semantic = semantic
        self._catalog: Catalog | None = None
        self._folder: Path | None = None
        self._fulltext: FullTextIndex | None = None
        self.texts: list[str] = []
        self.text_vectors = np.empty((0, DIM), dtype=np.float32)
        self._semantic_dirty = False
        self._written_here = False  # this session changed the catalog
        # The catalog's annotation revision the indexes reflect; any change to any image's
        # text (here or in another process) moves the catalog's revision past it.
        self._applied = -1
        # Searches share the indexes; bringing them up to date holds them alone.
        self.lock = ReadWriteLock()

    def attach(self, catalog: Catalog, root: Path) -> None:
        self._catalog = catalog
        self._folder = root / "cache" / "text"
        self._fulltext = FullTextIndex(self._folder / "fulltext")
        self._applied = -1

    def mark_written(self) -> None:
        # Staleness itself shows in the catalog's annotation revision; what matters here is
        # that this session wrote, so closing it brings the caches up to date.
        self._written_here = True

    @property
    def catalog(self) -> Catalog:
        if self._catalog is None:
            raise LookalikeError("the text channel is not loaded; open its collection first")
        return self._catalog

    def fulltext(self) -> FullTextIndex:
        """The BM25 index (search it within ``lock.reading()``, after :meth:`sync`)."""
        return self._index()

    def sync(self) -> None:
        """Bring both indexes up to the catalog's text (call it outside ``lock.reading()``)."""
        if self.catalog.annotations.revision() == self._applied:
            return
        with self.lock.writing():
            if self.catalog.annotations.revision() == self._applied:
                return
            self._applied = self._sync_fulltext()
            if self.semantic:
                self._sync_semantic()

    def save(self) -> None:
        if self._catalog is None:
            return
        if self._written_here:
            # A read-only session (info, a search) must not pay for reading every text.
            self.sync()
        with self.lock.writing():
            self._save()

    def _save(self) -> None:
        if self._semantic_dirty:
            atomic_write_bytes(self._semantic_path(), _semantic_bytes(
                self.texts, self.text_vectors, self.encoder.info["name"]))
            self._semantic_dirty = False
        if self._written_here and self._applied > 0:
            # The index has applied the log up to here; the entries are no longer needed.
            self.catalog.annotations.forget_log(self._applied)

    # -- the full-text index ----------------------------------------------------------------

    def _sync_fulltext(self) -> int:
        """Bring the BM25 index up to the catalog's text; returns the revision it reflects."""
        index = self._index()
        catalog = self.catalog
        revision = catalog.annotations.revision()
        state = index.state()
        noted = catalog.meta(TEXT_REVISION_KEY)
        if (state is None or state.get("catalog_id") != catalog.catalog_id
                or noted is None or int(state.get("revision", -1)) != int(noted)):
            index.clear()
            changed = catalog.annotations.annotated_images()
        else:
            applied = int(state["revision"])
            if applied == revision:
                return revision
            changed = catalog.annotations.changed_since(applied)
        upserts, deletes = self._documents(changed)
        index.write(upserts, deletes, {"catalog_id": catalog.catalog_id, "revision": revision})
        catalog.set_meta(TEXT_REVISION_KEY, str(revision), locked=False)
        return revision

    def documents(self) -> list[TextDocument]:
        """The full-text documents of every annotated image, by image id (what a split
        collection's searcher indexes over all its shards)."""
        return self._documents(self.catalog.annotations.annotated_images())[0]

    def _documents(self, image_ids: list[int]) -> tuple[list[TextDocument], list[int]]:
        annotations = self.catalog.annotations.of_images(image_ids)
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

    # -- the sentence vectors ---------------------------------------------------------------

    def _semantic_path(self) -> Path:
        if self._folder is None:
            raise LookalikeError("the text channel is not loaded; open its collection first")
        return self._folder / "semantic.npz"

    def _sync_semantic(self) -> None:
        if not self.texts:
            self.texts, self.text_vectors = _read_semantic(self._semantic_path(),
                                                           self.encoder.info)
        wanted = self.catalog.annotations.distinct_texts(TEXT_KINDS)
        have = set(self.texts)
        new = [text for text in wanted if text not in have]
        if not new and len(wanted) == len(self.texts):
            return
        keep = set(wanted)
        rows = [i for i, text in enumerate(self.texts) if text in keep]
        vectors = self.encoder.load().encode(new) if new else np.empty((0, DIM), np.float32)
        self.texts = [self.texts[i] for i in rows] + new
        self.text_vectors = np.concatenate([self.text_vectors[rows], vectors])
        self._semantic_dirty = True


def _semantic_bytes(texts: list[str], vectors: np.ndarray, encoder: str) -> bytes:
    encoded = [text.encode("utf-8", "surrogatepass") for text in texts]
    buffer = io.BytesIO()
    # Joined bytes and lengths: a fixed-width string array is as wide as the longest text,
    # times every text.
    np.savez(buffer, text_bytes=np.frombuffer(b"".join(encoded), dtype=np.uint8),
             text_lengths=np.array([len(e) for e in encoded], dtype=np.int64),
             vectors=vectors, encoder=np.array(encoder))
    return buffer.getvalue()


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
