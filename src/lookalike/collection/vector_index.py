"""A channel's vector index, derived from the catalog and kept in step with it.

The catalog holds every vector; the index (exact, HNSW or IVF-PQ) is a cache built from
them, saved under ``cache/<channel>/`` and reconciled with the catalog by vector-id sets
before a search: a crash between a catalog commit and a cache write costs a small update,
never a wrong result. A whitening learned on the vectors is part of the cache, learned
when the cache is built from scratch and again each time the collection doubles.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from lookalike.collection.index_cache import IndexCache, IndexState
from lookalike.concurrency import ReadWriteLock
from lookalike.errors import CollectionError, LookalikeError
from lookalike.index import choose_index_spec, get_index_class, make_index, parse_index_spec
from lookalike.storage import Catalog
from lookalike.whitening import PCAWhitening


class Whitening(Protocol):
    """How a channel whitens its vectors before they are indexed (the global channel's)."""

    @property
    def key(self) -> str | None:
        """What identifies the whitening in use, for cache validity; None for none."""

    @property
    def output_dim(self) -> int | None:
        """The dimension after whitening; None keeps the input's."""

    def relearn(self, whitened_on: int, n_vectors: int) -> bool:
        """Whether a whitening learned on ``whitened_on`` vectors is due again."""

    def learn(self, matrix: np.ndarray) -> tuple[PCAWhitening | None, int]:
        """The whitening to apply and how many vectors it was learned on."""


class RowLayoutError(CollectionError):
    """A catalog row is not as wide as the layout says: the channel's rows were rewritten
    in another layout (the regions channel's projection) since the layout was read."""


@dataclass(frozen=True)
class Layout:
    """Where a channel's vectors are: its catalog rows start with a ``dim`` vector among
    ``record_floats`` values; ``decode`` turns a list of rows into an (n, record_floats)
    float32 matrix (the channel's codec knows how they are stored)."""

    channel: str
    dim: int
    record_floats: int
    decode: Callable[[Sequence[bytes]], np.ndarray]


class DerivedVectorIndex:
    """The nearest-neighbour index over one channel's catalog vectors."""

    def __init__(self, layout: Layout, *, index: str = "auto", exact_below: int = 50_000,
                 whitening: Whitening | None = None) -> None:
        self.layout = layout
        #: Reads the layout the catalog's rows have now, before every sync (set by a channel
        #: whose row width can change while collections are open: regions).
        self.follow: Callable[[], Layout] | None = None
        self.index_setting = index
        self.exact_below = exact_below
        self.whitening_policy = whitening
        self._catalog: Catalog | None = None
        self._cache: IndexCache | None = None
        self._state: IndexState | None = None
        self._vector_ids = np.empty(0, dtype=np.int64)
        self._vector_images = np.empty(0, dtype=np.int64)
        self._stale = True  # the catalog may have changed since the last sync
        self._cache_dirty = False  # the in-memory index differs from the cache on disk
        self._written_here = False  # this session changed the catalog
        self._max_id_at_open = 0
        # Searches share the index; bringing it up to date holds it alone.
        self._lock = ReadWriteLock()

    # -- lifecycle --------------------------------------------------------------------------

    def attach(self, catalog: Catalog, root: Path) -> None:
        self._catalog = catalog
        self._cache = IndexCache(root / "cache" / self.layout.channel)
        self._max_id_at_open = catalog.vectors.max_id()
        self._stale = True

    def mark_stale(self) -> None:
        with self._lock.writing():  # not while a sync that read the catalog before is running
            self._stale = True
            self._written_here = True

    @property
    def catalog(self) -> Catalog:
        if self._catalog is None:
            raise LookalikeError(f"the {self.layout.channel} channel is not loaded; open its "
                                 "collection first")
        return self._catalog

    def save(self) -> None:
        # Only an index that this session built or changed is worth writing; a read-only
        # use (info, a removal of nothing) must not pay for a build.
        if self._state is None and not self._written_here:
            return
        with self._lock.writing():
            self._sync()
            if self._cache_dirty and self._state is not None and self._cache is not None:
                self._cache.write(self._state)
                self._cache_dirty = False

    # -- searching --------------------------------------------------------------------------

    def sync(self) -> None:
        """Bring the index up to date with the catalog now (searches do it anyway)."""
        self._sync()

    def whitening(self) -> PCAWhitening | None:
        """The whitening the index holds vectors in (None: raw vectors)."""
        self._sync()
        with self._lock.reading():
            return self._state.whitening if self._state else None

    def nearest(self, vector: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(scores, vector ids, image ids) of the ``k`` nearest stored vectors, best first."""
        self._sync()
        with self._lock.reading():
            index = self._state.index if self._state else None
            vector_ids, vector_images = self._vector_ids, self._vector_images
            empty = np.empty(0, dtype=np.int64)
            if index is None or len(index) == 0 or len(vector_ids) == 0:
                return np.empty(0, dtype=np.float32), empty, empty
            scores, ids = index.search(np.atleast_2d(vector), min(k, len(index)))
        found, found_scores = ids[0], scores[0]
        rows = np.minimum(np.searchsorted(vector_ids, found), len(vector_ids) - 1)
        # An id the catalog no longer has (a stale cache) must never be shown as another image.
        known = (found >= 0) & (vector_ids[rows] == found)
        return found_scores[known], found[known], vector_images[rows[known]]

    def best_per_image(self, vector: np.ndarray, k: int, depth: int,
                       skip: frozenset[int] = frozenset()) -> list[tuple[int, float, int]]:
        """(image id, score, vector id) of the ``k`` images whose best row is nearest
        ``vector``, best first; for channels with many rows per image (faces, regions).
        Rows in ``skip`` do not count. Starts ``depth`` rows deep and looks four times
        further while rows of a few images fill the list."""
        while True:
            scores, vector_ids, image_ids = self.nearest(vector, depth)
            best: dict[int, tuple[float, int]] = {}
            for score, vector_id, image_id in zip(scores, vector_ids, image_ids, strict=True):
                if int(vector_id) in skip:
                    continue
                if int(image_id) not in best:
                    best[int(image_id)] = (float(score), int(vector_id))
            if len(best) >= k or len(vector_ids) < depth:
                break
            depth *= 4
        return [(image_id, score, vector_id)
                for image_id, (score, vector_id) in list(best.items())[:k]]

    def matrix(self, ids: Sequence[int] | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(vector ids, (n, dim) vectors) of ``ids``, or of the whole channel, as stored."""
        return self._matrix(self.follow() if self.follow is not None else self.layout, ids)

    def _matrix(self, layout: Layout, ids: Sequence[int] | None = None
                ) -> tuple[np.ndarray, np.ndarray]:
        # A sync reads the rows in the layout it followed once at its start.
        vector_ids, blobs = self.catalog.vectors.load_blobs(layout.channel, ids)
        rows = layout.decode(blobs)
        return vector_ids, np.ascontiguousarray(rows[:, :layout.dim])

    def check_settings(self) -> None:
        """Try the index settings on a few random vectors, so a bad one fails before indexing."""
        if self.index_setting == "auto":
            return
        policy = self.whitening_policy
        dim = (policy.output_dim if policy else None) or self.layout.dim
        index = make_index(self.index_setting, dim)
        if index.needs_training:
            return  # trained on real vectors later; its parameters were checked by type
        probe = np.random.default_rng(0).normal(size=(4, index.dim)).astype(np.float32)
        index.add(np.arange(4, dtype=np.int64), probe)
        index.search(probe[:1], 2)

    def stats(self) -> dict[str, Any]:
        n = self.catalog.vectors.count(self.layout.channel)
        with self._lock.reading():
            state = self._state
        return {
            "vectors": n,
            "index": state.spec if state else self._wanted_spec(n),
            "index_memory_bytes": state.index.memory_bytes() if state else None,
            **({"whitening_learned_on": state.whitened_on if state else None}
               if self.whitening_policy is not None else {}),
        }

    # -- keeping the index in step with the catalog ----------------------------------------

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
        with self._lock.writing():
            for attempt in range(3):
                if not self._stale:  # another thread may have done it meanwhile
                    return
                if self.follow is not None:
                    self.layout = self.follow()
                try:
                    self._bring_up_to_date()
                except RowLayoutError:
                    # Rewritten between reading the layout and reading the rows: again.
                    if attempt == 2 or self.follow is None:
                        raise

    def _bring_up_to_date(self) -> None:
        self._vector_ids, self._vector_images = self.catalog.vectors.ids(self.layout.channel)
        spec = self._wanted_spec(len(self._vector_ids))
        if self._state is None and self._cache is not None:
            self._state = self._trusted(self._cache.read())
        if self._state is None or not self._still_valid(self._state, spec):
            self._state = self._rebuild(spec)
            self._cache_dirty = True
        elif self._apply_changes(self._state):
            self._cache_dirty = True
        self._stale = False

    @property
    def _whitening_key(self) -> str | None:
        return self.whitening_policy.key if self.whitening_policy else None

    def _still_valid(self, state: IndexState, spec: str) -> bool:
        """Can ``state`` be brought up to date by adding and removing vectors?"""
        policy = self.whitening_policy
        return (state.spec == spec and self._fits_layout(state)
                and state.whitening_key == self._whitening_key
                and state.catalog_id == self.catalog.catalog_id
                and not (policy and policy.relearn(state.whitened_on, len(self._vector_ids))))

    def _fits_layout(self, state: IndexState) -> bool:
        """Whether ``state`` holds vectors of the width the catalog's rows now have."""
        whitening = state.whitening
        if whitening is not None:
            return whitening.input_dim == self.layout.dim and state.index.dim == whitening.dim
        return state.index.dim == self.layout.dim

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

    def _rebuild(self, spec: str) -> IndexState:
        vector_ids, matrix = self._matrix(self.layout)
        whitening, whitened_on = (self.whitening_policy.learn(matrix)
                                  if self.whitening_policy else (None, 0))
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
            whitening_key=self._whitening_key, whitened_on=whitened_on,
            catalog_id=self.catalog.catalog_id, max_vector_id=self.catalog.vectors.max_id())

    def _apply_changes(self, state: IndexState) -> bool:
        """Add and remove vectors so the index matches the catalog; True if anything changed."""
        held = state.index.ids()
        removed = np.setdiff1d(held, self._vector_ids, assume_unique=True)
        added = np.setdiff1d(self._vector_ids, held, assume_unique=True)
        if len(removed):
            state.index.remove(removed)
        if len(added):
            ids, matrix = self._matrix(self.layout, added.tolist())
            if state.whitening is not None:
                matrix = state.whitening.transform(matrix)
            state.index.add(ids, matrix)
        state.max_vector_id = max(state.max_vector_id, self.catalog.vectors.max_id())
        return bool(len(removed) or len(added))
