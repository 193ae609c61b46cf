"""Channels: the kinds of evidence a collection stores and searches.

A channel turns decoded images into vectors (one or many per image), stores them
in the catalog and answers queries. ``global`` (one whole-image embedding per
image) is the first; local features, faces, regions and text plug in through
the same contract, so the collection and the indexing pipeline never change
when a channel is added.
"""

from __future__ import annotations

import json
import shutil
import uuid
from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from lookalike.collection.catalog import Catalog
from lookalike.errors import LookalikeError, ValidationError
from lookalike.extractors import Extractor, make_extractor
from lookalike.index import VectorIndex, choose_index_spec, load_index, make_index
from lookalike.paths import atomic_write_bytes
from lookalike.whitening import PCAWhitening


@dataclass(frozen=True)
class Hit:
    """One matching image, with the channel's score and the evidence for it."""

    image_id: int
    score: float
    evidence: dict[str, Any] = field(default_factory=dict)


class Channel(ABC):
    """Template for a channel: extract at index time, search at query time."""

    name: ClassVar[str]

    @abstractmethod
    def manifest(self) -> dict[str, Any]:
        """The settings that shape stored vectors; recorded at creation, checked on open."""

    @abstractmethod
    def load(self, catalog: Catalog, cache_dir: Path) -> Channel:
        """Load models and bring the search structure up to date with the catalog."""

    @abstractmethod
    def extract(self, images: list[np.ndarray]) -> list[np.ndarray]:
        """For each image, its (m, dim) float32 vectors (m may be 0)."""

    @abstractmethod
    def embed_query(self, image: np.ndarray) -> np.ndarray:
        """The query's (m, dim) vectors, in the space the channel searches."""

    @abstractmethod
    def search(self, image: np.ndarray, k: int) -> list[Hit]:
        """The k best images for a decoded query image, best first."""

    @property
    def min_image_side(self) -> int | None:
        """The shorter side this channel needs; None means full resolution.

        Lets the decoder skip detail that the channel's model would throw away.
        """
        return None

    def prepare(self) -> None:
        """Load models now, so that one-off start-up cost is not billed to the first batch."""

    def mark_stale(self) -> None:
        """The catalog changed underneath; resynchronise before the next search."""

    def save_cache(self) -> None:
        """Persist derived structures so the next open is fast. Optional."""

    def stats(self) -> dict[str, Any]:
        return {}


@dataclass(frozen=True)
class GlobalChannelConfig:
    """Settings of the global channel. ``index='auto'`` picks exact search below
    ``exact_below`` vectors and HNSW above; ``whiten`` is a PCA-whitening target
    dimension learned on the collection (None keeps the raw embedding);
    ``whiten_from`` instead loads a whitening learned elsewhere (an .npz written by
    :meth:`GlobalChannel.save_whitening`), as papers do for small collections."""

    extractor: str = "efficientnet-lite0"
    index: str = "auto"
    whiten: int | None = None
    whiten_from: str | None = None
    exact_below: int = 50_000

    def __post_init__(self) -> None:
        if self.whiten is not None and self.whiten_from is not None:
            raise ValidationError("expected either whiten or whiten_from, got both")
        if self.whiten is not None and self.whiten < 1:
            raise ValidationError(f"expected a positive whitening dimension, got {self.whiten}")

    @property
    def whitening_key(self) -> str | None:
        """What identifies the whitening in use, for cache validity."""
        if self.whiten_from is not None:
            return f"file:{Path(self.whiten_from).resolve()}"
        return None if self.whiten is None else f"learned:{self.whiten}"

    def stored_settings(self) -> dict[str, Any]:
        """The settings that change what is stored, as opposed to how it is searched."""
        return {"extractor": self.extractor}


class GlobalChannel(Channel):
    """One whole-image embedding per image, searched by cosine similarity."""

    name = "global"

    def __init__(self, config: GlobalChannelConfig, *, extractor: Extractor | None = None) -> None:
        self.config = config
        self.extractor = extractor or make_extractor(config.extractor)
        self._catalog: Catalog | None = None
        self._cache_root: Path | None = None
        self._index: VectorIndex | None = None
        self._whitening: PCAWhitening | None = None
        self._vector_ids = np.empty(0, dtype=np.int64)
        self._vector_images = np.empty(0, dtype=np.int64)
        self._stale = True
        self._cache_dirty = False

    def manifest(self) -> dict[str, Any]:
        return {**asdict(self.config), "extractor_info": self.extractor.info.as_dict()}

    @property
    def dim(self) -> int:
        return self.extractor.info.dim

    # -- lifecycle ------------------------------------------------------------------------

    def load(self, catalog: Catalog, cache_dir: Path) -> GlobalChannel:
        self._catalog = catalog
        self._cache_root = cache_dir / self.name
        self._stale = True
        return self

    @property
    def min_image_side(self) -> int | None:
        preprocessing = getattr(self.extractor, "preprocessing", None)
        return None if preprocessing is None else int(preprocessing.resize_shorter)

    def prepare(self) -> None:
        self.extractor.load()

    def mark_stale(self) -> None:
        self._stale = True

    def extract(self, images: list[np.ndarray]) -> list[np.ndarray]:
        vectors = self.extractor.embed(images)
        return [row[None, :] for row in vectors]

    def embed_query(self, image: np.ndarray) -> np.ndarray:
        """The query's vector in the space the index holds (whitened when configured)."""
        self._sync()
        vector = self.extractor.embed([image])
        return self._whitening.transform(vector) if self._whitening else vector

    def search(self, image: np.ndarray, k: int) -> list[Hit]:
        return self.search_vector(self.embed_query(image), k)

    def search_vector(self, vector: np.ndarray, k: int) -> list[Hit]:
        """Search with a vector already in index space (see :meth:`embed_query`)."""
        self._sync()
        index = self._index
        if index is None or len(index) == 0:
            return []
        scores, ids = index.search(np.atleast_2d(vector), min(k, len(index)))
        keep = ids[0] >= 0
        rows = np.searchsorted(self._vector_ids, ids[0][keep])
        return [
            Hit(image_id=int(image_id), score=float(score))
            for image_id, score in zip(self._vector_images[rows], scores[0][keep], strict=True)
        ]

    # -- keeping the index in step with the catalog ----------------------------------------

    @property
    def catalog(self) -> Catalog:
        if self._catalog is None:
            raise LookalikeError("the global channel is not loaded; open its collection first")
        return self._catalog

    def _wanted_spec(self, n_vectors: int) -> str:
        if self.config.index == "auto":
            return choose_index_spec(n_vectors, exact_below=self.config.exact_below)
        return self.config.index

    def _sync(self) -> None:
        if not self._stale:
            return
        self._vector_ids, self._vector_images = self.catalog.vector_ids(self.name)
        spec = self._wanted_spec(len(self._vector_ids))
        if self._index is None:
            self._index, self._whitening = self._read_cache(spec)
        if self._index is None or self._index_spec != spec:
            self._rebuild(spec)
        else:
            self._apply_changes()
        self._stale = False

    def _rebuild(self, spec: str) -> None:
        vector_ids, matrix = self.catalog.load_vectors(self.name, self.dim)
        self._whitening = self._make_whitening(matrix)
        if self._whitening is not None:
            matrix = self._whitening.transform(matrix)
        index = make_index(spec, matrix.shape[1])
        if index.needs_training:
            index.train(matrix)
        if len(vector_ids):
            index.add(vector_ids, matrix)
        self._index, self._index_spec = index, spec
        self._cache_dirty = True

    def _make_whitening(self, matrix: np.ndarray) -> PCAWhitening | None:
        if self.config.whiten_from is not None:
            whitening = PCAWhitening.load(Path(self.config.whiten_from))
            if whitening.input_dim != self.dim:
                raise ValidationError(
                    f"{self.config.whiten_from}: expected a whitening for {self.dim}-d vectors, "
                    f"got one for {whitening.input_dim}-d")
            return whitening
        if self.config.whiten is not None:
            return PCAWhitening(self.config.whiten).fit(matrix)
        return None

    def save_whitening(self, path: Path) -> None:
        """Write the whitening in use, to reuse it on another collection (``whiten_from``)."""
        self._sync()
        if self._whitening is None:
            raise ValidationError("expected a collection opened with whitening, got none")
        self._whitening.save(path)

    def _apply_changes(self) -> None:
        index = self._index
        if index is None:
            raise LookalikeError("internal: no index to update")
        held = index.ids()
        removed = np.setdiff1d(held, self._vector_ids, assume_unique=True)
        added = np.setdiff1d(self._vector_ids, held, assume_unique=True)
        if len(removed):
            index.remove(removed)
        if len(added):
            ids, matrix = self.catalog.load_vectors(self.name, self.dim, added.tolist())
            if self._whitening is not None:
                matrix = self._whitening.transform(matrix)
            index.add(ids, matrix)
        self._cache_dirty = self._cache_dirty or bool(len(removed) or len(added))

    # -- the on-disk cache of the index ------------------------------------------------------
    # Layout: <cache>/global/CURRENT names a folder holding index.bin, whitening.npz and
    # info.json. A new folder is written in full before CURRENT is switched to it, so a
    # crash leaves either the old cache or the new one. Any doubt means a rebuild, since
    # the catalog can always regenerate it.

    _index_spec: str = ""

    def _read_cache(self, spec: str) -> tuple[VectorIndex | None, PCAWhitening | None]:
        root = self._cache_root
        if root is None or not (root / "CURRENT").is_file():
            return None, None
        folder = root / (root / "CURRENT").read_text().strip()
        try:
            info = json.loads((folder / "info.json").read_text())
            if info.get("spec") != spec or info.get("whitening") != self.config.whitening_key:
                return None, None
            whitening = None
            if self.config.whitening_key is not None:
                whitening = PCAWhitening.load(folder / "whitening.npz")
            index = load_index(folder / "index.bin")
        except (OSError, ValueError, LookalikeError):
            return None, None
        self._index_spec = spec
        return index, whitening

    def save_cache(self) -> None:
        self._sync()
        if not self._cache_dirty or self._index is None or self._cache_root is None:
            return
        root = self._cache_root
        token = uuid.uuid4().hex[:12]
        folder = root / token
        folder.mkdir(parents=True, exist_ok=True)
        self._index.save(folder / "index.bin")
        if self._whitening is not None:
            self._whitening.save(folder / "whitening.npz")
        info = {"spec": self._index_spec, "whitening": self.config.whitening_key,
                "n": len(self._index)}
        atomic_write_bytes(folder / "info.json", json.dumps(info).encode())
        atomic_write_bytes(root / "CURRENT", token.encode())
        for old in root.iterdir():
            if old.is_dir() and old.name != token:
                shutil.rmtree(old, ignore_errors=True)
        self._cache_dirty = False

    def stats(self) -> dict[str, Any]:
        self._sync()
        index = self._index
        return {
            "vectors": len(self._vector_ids),
            "index": self._index_spec,
            "index_memory_bytes": index.memory_bytes() if index is not None else 0,
            "whitening": self.config.whitening_key,
            "extractor_info": self.extractor.info.as_dict(),
        }


def channel_from_manifest(name: str, recorded: dict[str, Any]) -> Channel:
    if name != GlobalChannel.name:
        raise ValidationError(f"expected a known channel ('global'), got '{name}'")
    settings = {key: recorded[key] for key in ("extractor", "index", "whiten", "whiten_from",
                                               "exact_below") if key in recorded}
    return GlobalChannel(GlobalChannelConfig(**settings))
