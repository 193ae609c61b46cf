"""The one contract every vector index backend follows.

A :class:`VectorIndex` holds L2-normalised float32 vectors under int64 ids that the
caller chooses, and answers nearest-neighbour queries by inner product, which on
unit vectors is the cosine similarity. The public methods validate their arguments
here, once, and then call the protected ``_add`` / ``_remove`` / ``_search`` /
``_train`` hooks that a backend implements (template method), so every backend
rejects the same bad input with the same message.

Saved files are one self-describing, checksummed file each
(:mod:`lookalike.index.fileformat`); :meth:`VectorIndex.load` checks all of it and names
the file in every error.
"""

from __future__ import annotations

import math
import operator
import os
from abc import ABC, abstractmethod
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar, Self, cast

import numpy as np
import numpy.typing as npt

from lookalike.errors import (
    LookalikeError,
    ManifestMismatchError,
    MissingDependencyError,
    ValidationError,
    expect,
)
from lookalike.index.fileformat import read_index_file, write_index_file

FloatArray = npt.NDArray[np.float32]
IdArray = npt.NDArray[np.int64]
ParamValue = int | float

_SHOW_IDS = 10


def _show_ids(ids: npt.NDArray[Any]) -> str:
    """Format at most ``_SHOW_IDS`` ids for an error message."""
    shown = ", ".join(str(int(i)) for i in ids[:_SHOW_IDS])
    more = f" and {len(ids) - _SHOW_IDS} more" if len(ids) > _SHOW_IDS else ""
    return f"[{shown}]{more}"


def _describe(array: npt.NDArray[Any]) -> str:
    return f"shape {tuple(array.shape)} dtype {array.dtype}"


class VectorIndex(ABC):
    """Nearest-neighbour index over unit vectors with caller-chosen int64 ids.

    Scores are inner products of L2-normalised vectors (cosine similarities);
    vectors and queries are normalised on the way in. Ids are non-negative, unique
    among the live vectors and chosen by the caller; ``-1`` pads results.

    ``__init__`` only stores the parameters (scikit-learn style); a backend builds
    its data structures lazily on the first :meth:`train` or :meth:`add`.
    """

    #: Registry key of the backend, e.g. ``"flat"``.
    name: ClassVar[str]
    #: Every parameter the backend accepts, with its default. The default's type
    #: (int or float) is the type the parameter must have.
    default_params: ClassVar[Mapping[str, ParamValue]] = {}

    def __init__(self, dim: int, **params: ParamValue) -> None:
        expect(
            isinstance(dim, int | np.integer) and not isinstance(dim, bool) and int(dim) > 0,
            f"dim: expected a positive integer, got {dim!r}",
        )
        unknown = sorted(set(params) - set(self.default_params))
        expect(
            not unknown,
            f"{self.name} index: unknown parameter(s) {', '.join(unknown)}; "
            f"expected some of: {', '.join(self.default_params) or '(none)'}",
        )
        merged: dict[str, ParamValue] = dict(self.default_params)
        for key, value in params.items():
            merged[key] = _check_param(self.name, key, value, self.default_params[key])
        self._dim = int(dim)
        self._params = merged

    # ------------------------------------------------------------------ dependencies

    @classmethod
    def require_dependencies(cls) -> None:
        """Raise :class:`~lookalike.errors.MissingDependencyError` if a package it needs is missing.

        Backends with optional dependencies override this; the default needs nothing.
        """
        return None

    @classmethod
    def is_available(cls) -> bool:
        """Whether the backend's optional dependencies are installed."""
        try:
            cls.require_dependencies()
        except MissingDependencyError:
            return False
        return True

    # ------------------------------------------------------------------ properties

    @property
    def dim(self) -> int:
        """Dimension of the vectors."""
        return self._dim

    @property
    def params(self) -> dict[str, ParamValue]:
        """The backend parameters, defaults filled in (a copy)."""
        return dict(self._params)

    @property
    def spec(self) -> str:
        """The spec string that :func:`~lookalike.index.make_index` turns back into this index."""
        if not self._params:
            return self.name
        return f"{self.name}:" + ",".join(f"{k}={v}" for k, v in self._params.items())

    @property
    def needs_training(self) -> bool:
        """Whether :meth:`train` must run (or a big enough first :meth:`add`) before use."""
        return False

    def __len__(self) -> int:
        """Number of live vectors."""
        return self._count()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.spec!r} dim={self._dim} n={len(self)}>"

    def ids(self) -> IdArray:
        """The live ids, ascending, as a new int64 array."""
        return np.sort(np.asarray(self._ids(), dtype=np.int64))

    # ------------------------------------------------------------------ operations

    def train(self, vectors: npt.ArrayLike) -> Self:
        """Fit whatever the backend learns from data; a no-op for backends that learn nothing.

        Returns ``self`` so calls chain: ``make_index("ivfpq", 512).train(sample)``.
        """
        matrix = self._check_vectors(vectors, "vectors")
        self._train(matrix)
        return self

    def add(self, ids: npt.ArrayLike, vectors: npt.ArrayLike) -> None:
        """Add ``vectors`` (n, dim) under ``ids`` (n,).

        Raises :class:`~lookalike.errors.ValidationError`, leaving the index
        unchanged, when shapes or types are wrong, or an id repeats within the batch
        or is already live in the index.
        """
        id_array = self._check_ids(ids, "ids")
        matrix = self._check_vectors(vectors, "vectors")
        expect(
            len(id_array) == len(matrix),
            f"add: expected as many ids as vectors, got {len(id_array)} ids "
            f"and {len(matrix)} vectors",
        )
        if len(id_array) == 0:
            return
        unique, counts = np.unique(id_array, return_counts=True)
        repeated = unique[counts > 1]
        expect(len(repeated) == 0, f"add: ids repeat within the batch: {_show_ids(repeated)}")
        if self._count():
            present = id_array[self._contains(id_array)]
            expect(
                len(present) == 0,
                f"add: ids already in the {self.name} index: {_show_ids(present)}",
            )
        self._add(id_array, matrix)

    def remove(self, ids: npt.ArrayLike) -> int:
        """Remove the vectors under ``ids``; returns how many were present.

        Unknown ids (and ``-1`` padding) are ignored.
        """
        id_array = np.unique(self._check_ids(ids, "ids", allow_negative=True))
        id_array = id_array[id_array >= 0]
        if len(id_array) == 0 or self._count() == 0:
            return 0
        present = id_array[self._contains(id_array)]
        if len(present) == 0:
            return 0
        self._remove(present)
        return len(present)

    def search(
        self, queries: npt.ArrayLike, k: int | np.integer[Any]
    ) -> tuple[FloatArray, IdArray]:
        """The ``k`` nearest live vectors of each query.

        ``queries`` is (m, dim) or one (dim,) query, which is treated as (1, dim).
        Returns ``(scores, ids)``, each (m, k): float32 cosine similarities in
        descending order and the int64 ids they belong to. Rows are padded with
        ``-inf`` / ``-1`` where fewer than ``k`` vectors are found.
        """
        expect(
            isinstance(k, int | np.integer) and not isinstance(k, bool),
            f"k: expected an integer >= 1, got {k!r}",
        )
        k = operator.index(k)
        expect(k >= 1, f"k: expected an integer >= 1, got {k}")
        raw = np.asarray(queries)
        if raw.ndim == 1:
            raw = raw.reshape(1, -1)
        matrix = self._check_vectors(raw, "queries")
        m = len(matrix)
        if m == 0 or self._count() == 0:
            return _empty_result(m, k)
        scores, labels = self._search(matrix, k)
        scores = np.ascontiguousarray(scores, dtype=np.float32)
        labels = np.ascontiguousarray(labels, dtype=np.int64)
        if scores.shape != (m, k) or labels.shape != (m, k):  # pragma: no cover - backend bug
            raise LookalikeError(
                f"{self.name} index returned results of shape {scores.shape} / {labels.shape}, "
                f"expected {(m, k)}"
            )
        scores[labels < 0] = -np.inf
        return scores, labels

    # ------------------------------------------------------------------ persistence

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the index to ``path`` atomically: a reader sees the old file or the new one."""
        write_index_file(Path(path), {"backend": self.name, "dim": self._dim,
                                      "params": self._params, "count": self._count()},
                         self._state())

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Self:
        """Read an index written by :meth:`save`.

        Called on :class:`VectorIndex` it returns whichever backend the file holds;
        called on a backend class it raises
        :class:`~lookalike.errors.ManifestMismatchError` when the file holds another
        backend. A damaged file raises :class:`~lookalike.errors.LookalikeError`
        naming it.
        """
        source = Path(path)
        header, sections = read_index_file(source)
        backend = header["backend"]
        if cls is VectorIndex:
            from lookalike.index.registry import get_index_class

            try:
                target_cls: type[VectorIndex] = get_index_class(backend)
            except ValidationError as exc:
                raise ManifestMismatchError(f"{source}: {exc}") from exc
        else:
            if backend != cls.name:
                raise ManifestMismatchError(
                    f"{source}: holds a '{backend}' index, expected a '{cls.name}' index"
                )
            target_cls = cls
        try:
            index = target_cls(header["dim"], **header["params"])
        except ValidationError as exc:
            raise ManifestMismatchError(
                f"{source}: parameters do not fit the {backend} backend: {exc}"
            ) from exc
        try:
            index._restore(sections)
        except MissingDependencyError:
            raise
        except (LookalikeError, ValueError, KeyError, RuntimeError) as exc:
            raise LookalikeError(f"{source}: corrupt {backend} index: {exc}") from exc
        if len(index) != header["count"]:
            raise LookalikeError(
                f"{source}: corrupt {backend} index: header says {header['count']} vectors, "
                f"found {len(index)}"
            )
        return cast(Self, index)

    # ------------------------------------------------------------------ validation

    def _check_vectors(self, vectors: npt.ArrayLike, what: str) -> FloatArray:
        """Return ``vectors`` as a C-contiguous (n, dim) float32 array of unit rows."""
        expected = f"{what}: expected a (n, {self._dim}) float32-convertible array"
        try:
            raw = np.asarray(vectors)
        except (TypeError, ValueError) as exc:
            raise ValidationError(f"{expected}, got {type(vectors).__name__} ({exc})") from exc
        expect(
            raw.dtype.kind in "fiu",
            f"{expected}, got {_describe(raw)}",
        )
        expect(raw.ndim == 2 and raw.shape[1] == self._dim, f"{expected}, got {_describe(raw)}")
        matrix = np.ascontiguousarray(raw, dtype=np.float32)
        if len(matrix) == 0:
            return matrix
        expect(
            bool(np.isfinite(matrix).all()),
            f"{expected} of finite values, got NaN or infinity",
        )
        norms = np.linalg.norm(matrix, axis=1, keepdims=True)
        zero = np.flatnonzero(norms[:, 0] == 0)
        expect(
            len(zero) == 0,
            f"{expected} of non-zero rows, got zero rows at {_show_ids(zero)}",
        )
        matrix = matrix / norms
        return np.ascontiguousarray(matrix, dtype=np.float32)

    def _check_ids(self, ids: npt.ArrayLike, what: str, *, allow_negative: bool = False) -> IdArray:
        """Return ``ids`` as a 1-D int64 array (of non-negative values unless allowed)."""
        expected = f"{what}: expected a 1-D array of non-negative int64 ids"
        raw = np.asarray(ids)
        if raw.ndim == 1 and raw.size == 0:
            return np.empty(0, dtype=np.int64)
        expect(raw.dtype.kind in "iu", f"{expected}, got {_describe(raw)}")
        expect(raw.ndim == 1, f"{expected}, got {_describe(raw)}")
        if raw.dtype.kind == "u":
            expect(
                bool((raw <= np.iinfo(np.int64).max).all()),
                f"{expected}, got values above the int64 range",
            )
        id_array = raw.astype(np.int64)
        if allow_negative:
            return id_array
        negative = id_array[id_array < 0]
        expect(len(negative) == 0, f"{expected}, got negative ids {_show_ids(negative)}")
        return id_array

    # ------------------------------------------------------------------ backend hooks

    @abstractmethod
    def _count(self) -> int:
        """Number of live vectors."""

    @abstractmethod
    def _ids(self) -> IdArray:
        """Live ids in any order."""

    @abstractmethod
    def _contains(self, ids: IdArray) -> npt.NDArray[np.bool_]:
        """Mask of which ``ids`` are live."""

    def _train(self, vectors: FloatArray) -> None:
        """Learn from ``vectors`` (validated, normalised); nothing to learn by default."""
        del vectors

    @abstractmethod
    def _add(self, ids: IdArray, vectors: FloatArray) -> None:
        """Add validated, normalised ``vectors`` under new, unique ``ids``."""

    @abstractmethod
    def _remove(self, ids: IdArray) -> None:
        """Remove ``ids``, which are unique and all live."""

    @abstractmethod
    def _search(self, queries: FloatArray, k: int) -> tuple[FloatArray, IdArray]:
        """(m, k) scores descending and ids, ``-1`` where nothing was found; index not empty."""

    @abstractmethod
    def _state(self) -> dict[str, npt.NDArray[Any]]:
        """Arrays that :meth:`_restore` rebuilds the index from."""

    @abstractmethod
    def _restore(self, state: Mapping[str, npt.NDArray[Any]]) -> None:
        """Rebuild a freshly constructed index from :meth:`_state`'s arrays (read-only views)."""

    @abstractmethod
    def memory_bytes(self) -> int:
        """Estimate of the RAM held by the vectors and the search structures."""


# ---------------------------------------------------------------------- helpers


def _check_param(backend: str, key: str, value: object, default: ParamValue) -> ParamValue:
    if isinstance(default, int):
        expect(
            isinstance(value, int | np.integer) and not isinstance(value, bool),
            f"{backend} index: parameter {key}: expected an integer, got {value!r}",
        )
        return int(cast(int, value))
    expect(
        isinstance(value, int | float | np.integer | np.floating) and not isinstance(value, bool),
        f"{backend} index: parameter {key}: expected a number, got {value!r}",
    )
    number = float(cast(float, value))
    expect(math.isfinite(number), f"{backend} index: parameter {key}: expected a finite number")
    return number


def _empty_result(m: int, k: int) -> tuple[FloatArray, IdArray]:
    return np.full((m, k), -np.inf, dtype=np.float32), np.full((m, k), -1, dtype=np.int64)
