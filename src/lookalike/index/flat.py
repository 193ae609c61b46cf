"""Exact search by brute force: the reference every approximate backend is measured against."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt

from lookalike.index.base import FloatArray, IdArray, VectorIndex
from lookalike.index.registry import register_index

# Largest score matrix (queries x vectors) computed at once, in float32 elements.
_SCORE_BLOCK = 1 << 24
# Rough cost of one entry of the id -> row dict (key, value, table slot).
_DICT_ENTRY_BYTES = 100


@register_index
class FlatIndex(VectorIndex):
    """Exact inner-product search with numpy: a matrix product and a partial sort.

    Vectors live in one growable (capacity, dim) float32 array; ``_row_ids[row]``
    is the id of each row and ``_rows`` maps an id back to its row. A removal moves
    the last row into the hole (swap-remove), so rows stay dense and search cost
    tracks the live count.
    """

    name = "flat"
    default_params: ClassVar[Mapping[str, int | float]] = {}

    def __init__(self, dim: int) -> None:
        super().__init__(dim)
        self._vectors: FloatArray = np.empty((0, self._dim), dtype=np.float32)
        self._row_ids: IdArray = np.empty(0, dtype=np.int64)
        self._rows: dict[int, int] = {}
        self._n = 0

    # --------------------------------------------------------------- bookkeeping

    def _count(self) -> int:
        return self._n

    def _ids(self) -> IdArray:
        return self._row_ids[: self._n].copy()

    def _contains(self, ids: IdArray) -> npt.NDArray[np.bool_]:
        rows = self._rows
        return np.fromiter((int(i) in rows for i in ids), dtype=bool, count=len(ids))

    def _reserve(self, needed: int) -> None:
        capacity = len(self._vectors)
        if needed <= capacity:
            return
        new_capacity = max(needed, 2 * capacity, 64)
        vectors = np.empty((new_capacity, self._dim), dtype=np.float32)
        vectors[: self._n] = self._vectors[: self._n]
        row_ids = np.full(new_capacity, -1, dtype=np.int64)
        row_ids[: self._n] = self._row_ids[: self._n]
        self._vectors, self._row_ids = vectors, row_ids

    # --------------------------------------------------------------- operations

    def _add(self, ids: IdArray, vectors: FloatArray) -> None:
        start, stop = self._n, self._n + len(ids)
        self._reserve(stop)
        self._vectors[start:stop] = vectors
        self._row_ids[start:stop] = ids
        self._rows.update(zip(ids.tolist(), range(start, stop), strict=True))
        self._n = stop

    def _remove(self, ids: IdArray) -> None:
        for id_ in ids.tolist():
            row = self._rows.pop(id_)
            last = self._n - 1
            if row != last:
                moved = int(self._row_ids[last])
                self._vectors[row] = self._vectors[last]
                self._row_ids[row] = moved
                self._rows[moved] = row
            self._row_ids[last] = -1
            self._n = last
        # Give memory back once the index has shrunk to a quarter of its capacity.
        if len(self._vectors) > 64 and self._n < len(self._vectors) // 4:
            self._vectors = self._vectors[: max(self._n, 64)].copy()
            self._row_ids = self._row_ids[: max(self._n, 64)].copy()

    def _search(self, queries: FloatArray, k: int) -> tuple[FloatArray, IdArray]:
        n = self._n
        vectors = self._vectors[:n]
        m = len(queries)
        kk = min(k, n)
        scores = np.full((m, k), -np.inf, dtype=np.float32)
        labels = np.full((m, k), -1, dtype=np.int64)
        block = max(1, _SCORE_BLOCK // n)
        for start in range(0, m, block):
            stop = min(start + block, m)
            sims = queries[start:stop] @ vectors.T
            if kk < n:
                top = np.argpartition(-sims, kk - 1, axis=1)[:, :kk]
            else:
                top = np.broadcast_to(np.arange(n), (stop - start, n))
            top_scores = np.take_along_axis(sims, top, axis=1)
            order = np.argsort(-top_scores, axis=1, kind="stable")
            rows = np.take_along_axis(top, order, axis=1)
            scores[start:stop, :kk] = np.take_along_axis(top_scores, order, axis=1)
            labels[start:stop, :kk] = self._row_ids[rows]
        return scores, labels

    # --------------------------------------------------------------- persistence

    def _state(self) -> dict[str, npt.NDArray[Any]]:
        return {"ids": self._row_ids[: self._n], "vectors": self._vectors[: self._n]}

    def _restore(self, state: Mapping[str, npt.NDArray[Any]]) -> None:
        ids = np.array(state["ids"], dtype=np.int64)
        vectors = np.array(state["vectors"], dtype=np.float32)
        if ids.ndim != 1 or vectors.shape != (len(ids), self._dim):
            raise ValueError(
                f"expected ids (n,) and vectors (n, {self._dim}), "
                f"got {ids.shape} and {vectors.shape}"
            )
        rows = dict(zip(ids.tolist(), range(len(ids)), strict=True))
        if len(rows) != len(ids):
            raise ValueError("repeated ids")
        self._vectors, self._row_ids, self._rows, self._n = vectors, ids, rows, len(ids)

    def memory_bytes(self) -> int:
        return int(self._vectors.nbytes + self._row_ids.nbytes + _DICT_ENTRY_BYTES * self._n)
