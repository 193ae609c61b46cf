"""Channels: the kinds of evidence a collection stores and searches.

A channel turns decoded images into vectors (one or many per image), stores them
in the catalog and answers queries. ``global`` (one whole-image embedding per
image) is the first; local features, faces, regions and text plug in through
the same contract, so the collection and the indexing pipeline never change
when a channel is added.
"""

from __future__ import annotations

import os
import sqlite3
from abc import ABC, abstractmethod
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from lookalike.collection.catalog import Catalog
from lookalike.collection.index_cache import IndexCache, IndexState
from lookalike.errors import LookalikeError, ValidationError
from lookalike.extractors import Extractor, make_extractor
from lookalike.images import Box, crop
from lookalike.index import choose_index_spec, get_index_class, make_index, parse_index_spec
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
    def load(self, catalog: Catalog, root: Path) -> Channel:
        """Attach to the collection in ``root``; the search structure follows the catalog."""

    @abstractmethod
    def extract(self, images: list[np.ndarray]) -> list[np.ndarray]:
        """For each image, what the channel stores: (m, dim) float32 vectors (m may be 0),
        or a packed record that :meth:`encode` turns into bytes."""

    @abstractmethod
    def embed_query(self, image: np.ndarray) -> np.ndarray:
        """The query's (m, dim) vectors, in the space the channel searches."""

    @abstractmethod
    def search(self, image: np.ndarray, k: int, box: Box | None = None) -> list[Hit]:
        """The k best images for a decoded query image, best first.

        ``box`` = (x0, y0, x1, y1) in the image's pixels limits the query to that region.
        """

    def encode(self, extracted: np.ndarray) -> list[bytes]:
        """The catalog rows for one image's :meth:`extract` output: one blob per vector."""
        return [np.ascontiguousarray(row, dtype=np.float32).tobytes()
                for row in np.atleast_2d(extracted)] if extracted.size else []

    def store(self, catalog: Catalog, conn: sqlite3.Connection, image_id: int,
              extracted: np.ndarray) -> None:
        """Make ``extracted`` the image's rows, inside the batch's transaction ``conn``."""
        catalog.replace_vectors(conn, self.name, image_id, self.encode(extracted))

    def is_blank(self, extracted: np.ndarray) -> bool:
        """True when an image gave nothing searchable and should be reported as failed.

        A uniform image can embed to all zeros: it matches nothing and would
        poison a cosine index.
        """
        return bool(extracted.size) and (not np.all(np.isfinite(extracted))
                                         or not np.any(extracted))

    @property
    def min_image_side(self) -> int | None:
        """The shorter side this channel needs; None means full resolution.

        Lets the decoder skip detail that the channel's model would throw away.
        """
        return None

    @property
    def query_min_side(self) -> int | None:
        """Like :attr:`min_image_side`, for queries (whose evidence is in their own pixels)."""
        return self.min_image_side

    @property
    def needs_training(self) -> bool:
        """True when the channel must learn from the collection before it can extract."""
        return False

    @property
    def training_images(self) -> int:
        """How many images :meth:`train` wants to see at most."""
        return 0

    def train(self, images: Iterable[np.ndarray], count: int) -> None:
        """Learn what extraction needs (a vocabulary) from ``count`` sample images."""

    def prepare(self) -> None:
        """Load models now, so that one-off start-up cost is not billed to the first batch."""

    def mark_stale(self) -> None:
        """The catalog changed underneath; resynchronise before the next search."""

    def save_cache(self) -> None:
        """Persist derived structures so the next open is fast. Optional."""

    def stats(self) -> dict[str, Any]:
        return {}

    def model_info(self) -> dict[str, Any]:
        """The manifest entries that identify the models in use; checked on every open,
        so a collection is never searched with another model than the one that filled it."""
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
        # Checked here, when a collection is created, so a bad setting is never recorded.
        if self.whiten is not None and self.whiten_from is not None:
            raise ValidationError("expected either whiten or whiten_from, got both")
        if self.whiten is not None and (not isinstance(self.whiten, int) or self.whiten < 1):
            raise ValidationError(f"expected a positive whitening dimension, got {self.whiten!r}")
        if not isinstance(self.exact_below, int) or self.exact_below < 1:
            raise ValidationError(f"expected exact_below >= 1, got {self.exact_below!r}")
        if self.index != "auto":
            parse_index_spec(self.index)  # names and types; values are tried at creation
        if self.whiten_from is not None:
            # Recorded absolute, so a later open from another folder finds the same file.
            object.__setattr__(self, "whiten_from", os.path.abspath(self.whiten_from))

    @property
    def whitening_key(self) -> str | None:
        """What identifies the whitening in use, for cache validity."""
        if self.whiten_from is not None:
            return f"file:{Path(self.whiten_from).resolve()}"
        return None if self.whiten is None else f"learned:{self.whiten}"

    def stored_settings(self) -> dict[str, Any]:
        """The settings that change what is stored, as opposed to how it is searched."""
        return {"extractor": self.extractor}


class VectorChannel(Channel):
    """A channel whose catalog rows start with a unit vector, searched by cosine similarity
    through a vector index that is kept in step with the catalog and cached on disk.

    Subclasses make the vectors (:meth:`extract`, :meth:`embed_query`) and may
    learn a whitening on them (the global channel does).
    """

    def __init__(self, *, index: str = "auto", exact_below: int = 50_000) -> None:
        self.index_setting = index
        self.exact_below = exact_below
        self._catalog: Catalog | None = None
        self._cache: IndexCache | None = None
        self._state: IndexState | None = None
        self._vector_ids = np.empty(0, dtype=np.int64)
        self._vector_images = np.empty(0, dtype=np.int64)
        self._stale = True  # the catalog may have changed since the last sync
        self._cache_dirty = False  # the in-memory index differs from the cache on disk
        self._written_here = False  # this session changed the catalog
        self._max_id_at_open = 0

    @property
    @abstractmethod
    def dim(self) -> int:
        """The length of the vectors this channel stores."""

    @property
    def record_floats(self) -> int:
        """float32 values per catalog row; more than :attr:`dim` when a record carries
        more than its vector (a face's box and landmarks)."""
        return self.dim

    # -- whitening hooks (none by default) --------------------------------------------------

    @property
    def whitening_key(self) -> str | None:
        """What identifies the whitening in use, for cache validity; None for none."""
        return None

    def _relearn_whitening(self, state: IndexState, n_vectors: int) -> bool:
        return False

    def _make_whitening(self, matrix: np.ndarray) -> tuple[PCAWhitening | None, int]:
        """The whitening to apply and how many vectors it was learned on."""
        return None, 0

    def _index_dim(self) -> int:
        return self.dim

    # -- lifecycle ------------------------------------------------------------------------

    def load(self, catalog: Catalog, root: Path) -> VectorChannel:
        self._catalog = catalog
        self._cache = IndexCache(root / "cache" / self.name)
        self._max_id_at_open = catalog.max_vector_id()
        self._stale = True
        return self

    def mark_stale(self) -> None:
        self._stale = True
        self._written_here = True

    def search_vector(self, vector: np.ndarray, k: int) -> list[Hit]:
        """Search with a vector already in index space (see :meth:`embed_query`)."""
        scores, _, image_ids = self.nearest(vector, k)
        return [Hit(image_id=int(image_id), score=float(score))
                for image_id, score in zip(image_ids, scores, strict=True)]

    def best_per_image(self, vector: np.ndarray, k: int, depth: int
                       ) -> list[tuple[int, float, int]]:
        """(image id, score, vector id) of the ``k`` images whose best row is nearest
        ``vector``, best first; for channels with many rows per image (faces, regions).
        Starts ``depth`` rows deep and looks four times further while rows of a few images
        fill the list."""
        while True:
            scores, vector_ids, image_ids = self.nearest(vector, depth)
            best: dict[int, tuple[float, int]] = {}
            for score, vector_id, image_id in zip(scores, vector_ids, image_ids, strict=True):
                if int(image_id) not in best:
                    best[int(image_id)] = (float(score), int(vector_id))
            if len(best) >= k or len(vector_ids) < depth:
                break
            depth *= 4
        return [(image_id, score, vector_id)
                for image_id, (score, vector_id) in list(best.items())[:k]]

    def nearest(self, vector: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(scores, vector ids, image ids) of the ``k`` nearest stored vectors, best first."""
        self._sync()
        index = self._state.index if self._state else None
        empty = np.empty(0, dtype=np.int64)
        if index is None or len(index) == 0 or len(self._vector_ids) == 0:
            return np.empty(0, dtype=np.float32), empty, empty
        scores, ids = index.search(np.atleast_2d(vector), min(k, len(index)))
        found, found_scores = ids[0], scores[0]
        rows = np.minimum(np.searchsorted(self._vector_ids, found), len(self._vector_ids) - 1)
        # An id the catalog no longer has (a stale cache) must never be shown as another image.
        known = (found >= 0) & (self._vector_ids[rows] == found)
        return found_scores[known], found[known], self._vector_images[rows[known]]

    # -- keeping the index in step with the catalog ----------------------------------------

    @property
    def catalog(self) -> Catalog:
        if self._catalog is None:
            raise LookalikeError(f"the {self.name} channel is not loaded; open its collection "
                                 "first")
        return self._catalog

    def _load_matrix(self, ids: Sequence[int] | None = None) -> tuple[np.ndarray, np.ndarray]:
        vector_ids, rows = self.catalog.load_vectors(self.name, self.record_floats, ids)
        return vector_ids, np.ascontiguousarray(rows[:, :self.dim])

    def _wanted_spec(self, n_vectors: int) -> str:
        if self.index_setting != "auto":
            return self.index_setting
        spec = choose_index_spec(n_vectors, exact_below=self.exact_below)
        if not get_index_class(parse_index_spec(spec)[0]).is_available():
            # faiss is optional: exact search stays correct, only slower, without it.
            return "flat"
        return spec

    def _sync(self) -> None:
        if not self._stale:
            return
        self._vector_ids, self._vector_images = self.catalog.vector_ids(self.name)
        spec = self._wanted_spec(len(self._vector_ids))
        if self._state is None and self._cache is not None:
            self._state = self._trusted(self._cache.read())
        if self._state is None or not self._still_valid(self._state, spec):
            self._state = self._rebuild(spec)
            self._cache_dirty = True
        elif self._apply_changes(self._state):
            self._cache_dirty = True
        self._stale = False

    def _still_valid(self, state: IndexState, spec: str) -> bool:
        """Can ``state`` be brought up to date by adding and removing vectors?"""
        return (state.spec == spec and state.whitening_key == self.whitening_key
                and state.catalog_id == self.catalog.catalog_id
                and not self._relearn_whitening(state, len(self._vector_ids)))

    def _trusted(self, state: IndexState | None) -> IndexState | None:
        """A cache read from disk, unless it has seen vector ids the catalog never issued.

        Vector ids are never reused, unless the catalog went back in time (restored
        from a backup, or its last commits lost with the power); then the cache may
        hold ids that the catalog will give to other images. Checked against the
        catalog as it was opened, before this session wrote anything.
        """
        if state is None or state.max_vector_id > self._max_id_at_open:
            return None
        return state

    def check_settings(self) -> None:
        """Try the index settings on a few random vectors, so a bad one fails before indexing."""
        if self.index_setting == "auto":
            return
        index = make_index(self.index_setting, self._index_dim())
        if index.needs_training:
            return  # trained on real vectors later; its parameters were checked by type
        probe = np.random.default_rng(0).normal(size=(4, index.dim)).astype(np.float32)
        index.add(np.arange(4, dtype=np.int64), probe)
        index.search(probe[:1], 2)

    def _rebuild(self, spec: str) -> IndexState:
        vector_ids, matrix = self._load_matrix()
        whitening, whitened_on = self._make_whitening(matrix)
        if whitening is not None:
            matrix = whitening.transform(matrix)
        index = make_index(spec, matrix.shape[1])
        if index.needs_training and len(matrix) < getattr(index, "min_training_vectors", 1):
            # Too few vectors to train a quantiser yet: search exactly until there are.
            spec, index = "flat", make_index("flat", matrix.shape[1])
        if index.needs_training:
            index.train(matrix)
        if len(vector_ids):
            index.add(vector_ids, matrix)
        return IndexState(
            index=index, spec=spec, whitening=whitening,
            whitening_key=self.whitening_key, whitened_on=whitened_on,
            catalog_id=self.catalog.catalog_id, max_vector_id=self.catalog.max_vector_id())

    def _apply_changes(self, state: IndexState) -> bool:
        """Add and remove vectors so the index matches the catalog; True if anything changed."""
        held = state.index.ids()
        removed = np.setdiff1d(held, self._vector_ids, assume_unique=True)
        added = np.setdiff1d(self._vector_ids, held, assume_unique=True)
        if len(removed):
            state.index.remove(removed)
        if len(added):
            ids, matrix = self._load_matrix(added.tolist())
            if state.whitening is not None:
                matrix = state.whitening.transform(matrix)
            state.index.add(ids, matrix)
        state.max_vector_id = max(state.max_vector_id, self.catalog.max_vector_id())
        return bool(len(removed) or len(added))

    def save_cache(self) -> None:
        # Only an index that this session built or changed is worth writing; a read-only
        # use (info, a removal of nothing) must not pay for a build.
        if self._state is None and not self._written_here:
            return
        self._sync()
        if self._cache_dirty and self._state is not None and self._cache is not None:
            self._cache.write(self._state)
            self._cache_dirty = False

    def stats(self) -> dict[str, Any]:
        n = self.catalog.count_vectors(self.name)
        state = self._state
        return {
            "vectors": n,
            "index": state.spec if state else self._wanted_spec(n),
            "index_memory_bytes": state.index.memory_bytes() if state else None,
        }


class GlobalChannel(VectorChannel):
    """One whole-image embedding per image, searched by cosine similarity."""

    name = "global"

    def __init__(self, config: GlobalChannelConfig, *, extractor: Extractor | None = None) -> None:
        super().__init__(index=config.index, exact_below=config.exact_below)
        self.config = config
        self.extractor = extractor or make_extractor(config.extractor)

    def manifest(self) -> dict[str, Any]:
        return {**asdict(self.config), **self.model_info()}

    def model_info(self) -> dict[str, Any]:
        return {"extractor_info": self.extractor.info.as_dict()}

    @property
    def dim(self) -> int:
        return self.extractor.info.dim

    @property
    def min_image_side(self) -> int | None:
        preprocessing = getattr(self.extractor, "preprocessing", None)
        return None if preprocessing is None else int(preprocessing.resize_shorter)

    def prepare(self) -> None:
        self.extractor.load()

    def extract(self, images: list[np.ndarray]) -> list[np.ndarray]:
        vectors = self.extractor.embed(images)
        return [row[None, :] for row in vectors]

    def embed_query(self, image: np.ndarray) -> np.ndarray:
        """The query's vector in the space the index holds (whitened when configured)."""
        self._sync()
        vector = self.extractor.embed([image])
        whitening = self._state.whitening if self._state else None
        return whitening.transform(vector) if whitening else vector

    def search(self, image: np.ndarray, k: int, box: Box | None = None) -> list[Hit]:
        return self.search_vector(self.embed_query(crop(image, box)), k)

    # -- whitening ----------------------------------------------------------------------------

    @property
    def whitening_key(self) -> str | None:
        return self.config.whitening_key

    def _index_dim(self) -> int:
        return self.config.whiten or self.dim

    def _relearn_whitening(self, state: IndexState, n_vectors: int) -> bool:
        learn = self.config.whiten
        return learn is not None and (
            (state.whitened_on == 0 and n_vectors > learn)
            or n_vectors >= 2 * max(state.whitened_on, 1))

    def _make_whitening(self, matrix: np.ndarray) -> tuple[PCAWhitening | None, int]:
        if self.config.whiten_from is not None:
            whitening = PCAWhitening.load(Path(self.config.whiten_from))
            if whitening.input_dim != self.dim:
                raise ValidationError(
                    f"{self.config.whiten_from}: expected a whitening for {self.dim}-d vectors, "
                    f"got one for {whitening.input_dim}-d")
            return whitening, -1
        if self.config.whiten is not None and len(matrix) > self.config.whiten:
            return PCAWhitening(self.config.whiten).fit(matrix), len(matrix)
        # Too few vectors to learn it yet: search unwhitened until there are enough.
        return None, 0

    def save_whitening(self, path: Path) -> None:
        """Write the whitening in use, to reuse it on another collection (``whiten_from``)."""
        self._sync()
        if self._state is None or self._state.whitening is None:
            raise ValidationError("expected a collection opened with a learned whitening, got none")
        self._state.whitening.save(path)

    def stats(self) -> dict[str, Any]:
        state = self._state
        return {
            **super().stats(),
            "whitening": self.config.whitening_key,
            "whitening_learned_on": state.whitened_on if state else None,
            "extractor_info": self.extractor.info.as_dict(),
        }
