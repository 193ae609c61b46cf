"""Approximate backends built on faiss: HNSW (graph) and IVF-PQ (compressed).

faiss is an optional dependency (``pip install 'lookalike[faiss]'``); it is
imported when an index first needs it, never at import time, and no
process-wide faiss setting (thread count, ...) is changed.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt

from lookalike.errors import MissingDependencyError, ValidationError, expect
from lookalike.index.base import FloatArray, IdArray, VectorIndex
from lookalike.index.registry import register_index

# Rows reconstructed at once when an HNSW graph is rebuilt without its tombstones.
_RECONSTRUCT_BLOCK = 1 << 16
# Rough cost of one entry of an id -> internal-id dict.
_DICT_ENTRY_BYTES = 100


def _import_faiss(feature: str) -> Any:
    """The faiss module, or :class:`MissingDependencyError` naming ``feature``."""
    try:
        import faiss
    except ImportError as exc:
        raise MissingDependencyError("faiss-cpu", feature, "faiss") from exc
    return faiss


def _check_positive(backend: str, **values: int) -> None:
    for key, value in values.items():
        expect(value >= 1, f"{backend} index: {key}: expected an integer >= 1, got {value}")


def _deserialize(faiss: Any, blob: npt.NDArray[Any], expected_type: str) -> Any:
    index = faiss.deserialize_index(np.ascontiguousarray(blob, dtype=np.uint8))
    found = type(index).__name__
    if found != expected_type:
        raise ValueError(f"expected a faiss {expected_type}, found a {found}")
    return index


@register_index
class HNSWIndex(VectorIndex):
    """Graph search with faiss ``IndexHNSWFlat`` (inner product).

    Parameters: ``M`` (graph degree; memory and accuracy grow with it),
    ``ef_construction`` (build-time beam width) and ``ef_search`` (query-time
    beam width; raise it for recall, lower it for speed).

    faiss numbers HNSW nodes 0, 1, 2, ... in insertion order and cannot delete
    them, so ``_labels[node]`` holds each node's external id, removed nodes are
    tombstoned in ``_deleted`` and filtered out of results after over-fetching
    ``k + tombstones`` (at most every node). When tombstones outnumber live
    vectors, :meth:`compact` rebuilds the graph from the live vectors.
    """

    name = "hnsw"
    default_params: ClassVar[Mapping[str, int | float]] = {
        "M": 32,
        "ef_construction": 80,
        "ef_search": 64,
    }

    def __init__(self, dim: int, *, M: int = 32, ef_construction: int = 80, ef_search: int = 64):
        super().__init__(dim, M=M, ef_construction=ef_construction, ef_search=ef_search)
        _check_positive(self.name, ef_construction=ef_construction, ef_search=ef_search)
        expect(M >= 2, f"hnsw index: M: expected an integer >= 2, got {M}")
        self._index: Any = None
        self._labels: IdArray = np.empty(0, dtype=np.int64)
        self._deleted: npt.NDArray[np.bool_] = np.empty(0, dtype=bool)
        self._n_deleted = 0
        self._nodes: dict[int, int] = {}

    @classmethod
    def require_dependencies(cls) -> None:
        _import_faiss(f"the {cls.name} index")

    @property
    def n_tombstones(self) -> int:
        """Removed vectors still in the graph, skipped at search time until :meth:`compact`."""
        return self._n_deleted

    def _new_faiss_index(self) -> Any:
        faiss = _import_faiss(f"the {self.name} index")
        index = faiss.IndexHNSWFlat(self._dim, int(self._params["M"]), faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = int(self._params["ef_construction"])
        index.hnsw.efSearch = int(self._params["ef_search"])
        return index

    # --------------------------------------------------------------- bookkeeping

    def _count(self) -> int:
        return len(self._nodes)

    def _ids(self) -> IdArray:
        return np.fromiter(self._nodes, dtype=np.int64, count=len(self._nodes))

    def _contains(self, ids: IdArray) -> npt.NDArray[np.bool_]:
        nodes = self._nodes
        return np.fromiter((int(i) in nodes for i in ids), dtype=bool, count=len(ids))

    # --------------------------------------------------------------- operations

    def _add(self, ids: IdArray, vectors: FloatArray) -> None:
        if self._index is None:
            self._index = self._new_faiss_index()
        start = int(self._index.ntotal)
        self._index.add(vectors)
        self._labels = np.concatenate([self._labels, ids])
        self._deleted = np.concatenate([self._deleted, np.zeros(len(ids), dtype=bool)])
        self._nodes.update(zip(ids.tolist(), range(start, start + len(ids)), strict=True))

    def _remove(self, ids: IdArray) -> None:
        for id_ in ids.tolist():
            self._deleted[self._nodes.pop(id_)] = True
        self._n_deleted += len(ids)
        if self._n_deleted > len(self._nodes):
            self.compact()

    def compact(self) -> None:
        """Rebuild the graph from the live vectors only, dropping every tombstone.

        Keeps ids and vectors; costs about as much as adding the live vectors anew.
        """
        if self._n_deleted == 0 or self._index is None:
            return
        old = self._index
        live_nodes = np.flatnonzero(~self._deleted)
        labels = self._labels[live_nodes]
        self._index = None
        self._labels = np.empty(0, dtype=np.int64)
        self._deleted = np.empty(0, dtype=bool)
        self._n_deleted = 0
        self._nodes = {}
        for start in range(0, len(live_nodes), _RECONSTRUCT_BLOCK):
            chunk = live_nodes[start : start + _RECONSTRUCT_BLOCK]
            lo, hi = int(chunk[0]), int(chunk[-1]) + 1
            vectors = old.reconstruct_n(lo, hi - lo)[chunk - lo]
            self._add(labels[start : start + len(chunk)], np.ascontiguousarray(vectors))

    def _search(self, queries: FloatArray, k: int) -> tuple[FloatArray, IdArray]:
        ntotal = int(self._index.ntotal)
        fetch = min(ntotal, k + self._n_deleted)
        scores, nodes = self._index.search(queries, fetch)
        keep = nodes >= 0
        if self._n_deleted:
            keep &= ~self._deleted[np.maximum(nodes, 0)]
        # Move the kept results to the front of each row, keeping their order.
        order = np.argsort(~keep, axis=1, kind="stable")[:, :k]
        kept = np.take_along_axis(keep, order, axis=1)
        out_scores = np.full((len(queries), k), -np.inf, dtype=np.float32)
        out_ids = np.full((len(queries), k), -1, dtype=np.int64)
        width = order.shape[1]
        out_scores[:, :width] = np.where(kept, np.take_along_axis(scores, order, axis=1), -np.inf)
        picked = np.take_along_axis(nodes, order, axis=1)
        out_ids[:, :width] = np.where(kept, self._labels[np.maximum(picked, 0)], -1)
        return out_scores, out_ids

    # --------------------------------------------------------------- persistence

    def _state(self) -> dict[str, npt.NDArray[Any]]:
        state: dict[str, npt.NDArray[Any]] = {"labels": self._labels, "deleted": self._deleted}
        if self._index is not None:
            faiss = _import_faiss(f"the {self.name} index")
            state["index"] = faiss.serialize_index(self._index)
        return state

    def _restore(self, state: Mapping[str, npt.NDArray[Any]]) -> None:
        labels = np.array(state["labels"], dtype=np.int64)
        deleted = np.array(state["deleted"], dtype=bool)
        if labels.ndim != 1 or deleted.shape != labels.shape:
            raise ValueError(f"labels {labels.shape} and tombstones {deleted.shape} disagree")
        index = None
        if "index" in state:
            faiss = _import_faiss(f"the {self.name} index")
            index = _deserialize(faiss, state["index"], "IndexHNSWFlat")
            if index.d != self._dim or index.metric_type != faiss.METRIC_INNER_PRODUCT:
                raise ValueError(f"faiss index of dim {index.d} / metric {index.metric_type}")
            if index.ntotal != len(labels):
                raise ValueError(f"faiss index holds {index.ntotal} nodes, labels {len(labels)}")
            index.hnsw.efSearch = int(self._params["ef_search"])
        elif len(labels):
            raise ValueError("labels without a faiss index")
        live = np.flatnonzero(~deleted)
        nodes = dict(zip(labels[live].tolist(), live.tolist(), strict=True))
        if len(nodes) != len(live):
            raise ValueError("repeated live ids")
        self._index, self._labels, self._deleted, self._nodes = index, labels, deleted, nodes
        self._n_deleted = int(deleted.sum())

    def memory_bytes(self) -> int:
        total = self._labels.nbytes + self._deleted.nbytes + _DICT_ENTRY_BYTES * len(self._nodes)
        if self._index is not None:
            hnsw = self._index.hnsw
            total += int(self._index.ntotal) * self._dim * 4
            total += hnsw.neighbors.size() * 4 + hnsw.levels.size() * 4 + hnsw.offsets.size() * 8
        return int(total)


@register_index
class IVFPQIndex(VectorIndex):
    """Inverted lists of product-quantised codes with faiss ``IndexIVFPQ`` (inner product).

    Parameters: ``nlist`` (coarse clusters), ``m`` (sub-quantisers; must divide
    ``dim``; ``0`` picks the largest divisor of ``dim`` up to 32), ``nbits`` (bits
    per sub-quantiser code) and ``nprobe`` (clusters visited per query). Each
    vector costs ``m * nbits / 8`` bytes plus its 8-byte id.

    The quantisers must be trained before vectors are added: call :meth:`train`
    with a sample, or the first :meth:`add` trains on its batch when that batch
    holds at least :attr:`min_training_vectors`. Scores are approximate, and a
    query may find fewer than ``k`` vectors when the visited lists hold fewer.
    """

    name = "ivfpq"
    default_params: ClassVar[Mapping[str, int | float]] = {
        "nlist": 256,
        "m": 0,
        "nbits": 8,
        "nprobe": 16,
    }

    def __init__(self, dim: int, *, nlist: int = 256, m: int = 0, nbits: int = 8, nprobe: int = 16):
        super().__init__(dim, nlist=nlist, m=m, nbits=nbits, nprobe=nprobe)
        _check_positive(self.name, nlist=nlist, nprobe=nprobe)
        expect(1 <= nbits <= 16, f"ivfpq index: nbits: expected 1 to 16, got {nbits}")
        expect(m >= 0, f"ivfpq index: m: expected an integer >= 1 (or 0 for auto), got {m}")
        if m == 0:
            m = max(d for d in range(1, min(32, self._dim) + 1) if self._dim % d == 0)
            self._params["m"] = m
        expect(
            self._dim % m == 0,
            f"ivfpq index: m: expected a divisor of dim {self._dim}, got {m}",
        )
        self._index: Any = None
        self._id_list: IdArray = np.empty(0, dtype=np.int64)  # sorted

    @classmethod
    def require_dependencies(cls) -> None:
        _import_faiss(f"the {cls.name} index")

    @property
    def min_training_vectors(self) -> int:
        """Fewest training vectors faiss accepts: one per coarse cluster and per PQ centroid."""
        return max(int(self._params["nlist"]), 1 << int(self._params["nbits"]))

    @property
    def needs_training(self) -> bool:
        return self._index is None or not bool(self._index.is_trained)

    # --------------------------------------------------------------- bookkeeping

    def _count(self) -> int:
        return len(self._id_list)

    def _ids(self) -> IdArray:
        return self._id_list.copy()

    def _contains(self, ids: IdArray) -> npt.NDArray[np.bool_]:
        if len(self._id_list) == 0:
            return np.zeros(len(ids), dtype=bool)
        pos = np.minimum(np.searchsorted(self._id_list, ids), len(self._id_list) - 1)
        found: npt.NDArray[np.bool_] = self._id_list[pos] == ids
        return found

    # --------------------------------------------------------------- operations

    def _train(self, vectors: FloatArray) -> None:
        expect(
            len(self._id_list) == 0,
            f"ivfpq index: cannot retrain an index that holds {len(self._id_list)} vectors; "
            "train a new one",
        )
        needed = self.min_training_vectors
        expect(
            len(vectors) >= needed,
            f"ivfpq index (nlist={self._params['nlist']}, nbits={self._params['nbits']}): "
            f"training expected at least {needed} vectors, got {len(vectors)}",
        )
        faiss = _import_faiss(f"the {self.name} index")
        p = self._params
        index = faiss.index_factory(
            self._dim, f"IVF{p['nlist']},PQ{p['m']}x{p['nbits']}", faiss.METRIC_INNER_PRODUCT
        )
        # Polysemous training (codes ordered for Hamming filtering) is slow and
        # unused here.
        index.do_polysemous_training = False
        index.train(vectors)
        index.nprobe = int(p["nprobe"])
        self._index = index

    def _add(self, ids: IdArray, vectors: FloatArray) -> None:
        if self.needs_training:
            needed = self.min_training_vectors
            if len(vectors) < needed:
                raise ValidationError(
                    f"ivfpq index is not trained: call train() with at least {needed} vectors "
                    f"first, or add a first batch of at least {needed} vectors "
                    f"(got {len(vectors)})"
                )
            self._train(vectors)
        self._index.add_with_ids(vectors, ids)
        self._id_list = np.sort(np.concatenate([self._id_list, ids]))

    def _remove(self, ids: IdArray) -> None:
        faiss = _import_faiss(f"the {self.name} index")
        removed = int(self._index.remove_ids(faiss.IDSelectorBatch(ids)))
        if removed != len(ids):  # pragma: no cover - faiss and our id list disagree
            raise RuntimeError(f"faiss removed {removed} vectors, expected {len(ids)}")
        self._id_list = self._id_list[~np.isin(self._id_list, ids)]

    def _search(self, queries: FloatArray, k: int) -> tuple[FloatArray, IdArray]:
        scores, ids = self._index.search(queries, k)
        return scores, ids

    # --------------------------------------------------------------- persistence

    def _state(self) -> dict[str, npt.NDArray[Any]]:
        state: dict[str, npt.NDArray[Any]] = {"ids": self._id_list}
        if self._index is not None:
            faiss = _import_faiss(f"the {self.name} index")
            state["index"] = faiss.serialize_index(self._index)
        return state

    def _restore(self, state: Mapping[str, npt.NDArray[Any]]) -> None:
        ids = np.array(state["ids"], dtype=np.int64)
        if ids.ndim != 1 or (len(ids) > 1 and not bool((np.diff(ids) > 0).all())):
            raise ValueError("ids are not a sorted list of distinct ids")
        index = None
        if "index" in state:
            faiss = _import_faiss(f"the {self.name} index")
            index = _deserialize(faiss, state["index"], "IndexIVFPQ")
            p = self._params
            found = (index.d, index.nlist, index.pq.M, index.pq.nbits, index.metric_type)
            wanted = (self._dim, p["nlist"], p["m"], p["nbits"], faiss.METRIC_INNER_PRODUCT)
            if found != wanted:
                raise ValueError(f"faiss index has (d, nlist, m, nbits, metric) {found}")
            if index.ntotal != len(ids):
                raise ValueError(f"faiss index holds {index.ntotal} vectors, ids {len(ids)}")
            index.nprobe = int(p["nprobe"])
        elif len(ids):
            raise ValueError("ids without a faiss index")
        self._index, self._id_list = index, ids

    def memory_bytes(self) -> int:
        total = self._id_list.nbytes
        if self._index is not None:
            index = self._index
            total += int(index.ntotal) * (int(index.code_size) + 8)
            total += int(index.nlist) * self._dim * 4  # coarse centroids
            total += self._dim * (1 << int(self._params["nbits"])) * 4  # PQ codebooks
        return int(total)
