"""What a loader returns: the three kinds of data set, and the error every loader raises."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from lookalike.errors import LookalikeError

Box = tuple[float, float, float, float]
PathLike = str | os.PathLike[str]


class DatasetError(LookalikeError):
    """A benchmark folder or ground-truth file is missing or not in the expected format."""


@dataclass(frozen=True)
class RetrievalQuery:
    """One query of a retrieval benchmark.

    Attributes:
        path: the query image.
        relevant: database images that count as correct answers.
        junk: database images to ignore when scoring (neither right nor wrong).
        box: region of interest ``(x0, y0, x1, y1)`` in the query image's pixels,
            or None for the whole image (Oxford queries are their box crop).
    """

    path: Path
    relevant: frozenset[Path]
    junk: frozenset[Path] = frozenset()
    box: Box | None = None


@dataclass(frozen=True)
class RetrievalDataset:
    """A database of images and queries against it, with their ground truth."""

    name: str
    database: tuple[Path, ...]
    queries: tuple[RetrievalQuery, ...]

    @property
    def ns_applicable(self) -> bool:
        """True when every query has exactly 4 relevant images, so the UKBench N-S score applies."""
        return bool(self.queries) and all(len(q.relevant) == 4 for q in self.queries)


@dataclass(frozen=True)
class ClassesDataset:
    """Images with a class each, for the metric-learning protocol (CUB-200, Cars196,
    Stanford Online Products): every image queries all the others, and an image of its
    own class is a right answer."""

    name: str
    images: tuple[Path, ...]
    labels: tuple[str, ...]

    @property
    def classes(self) -> int:
        return len(set(self.labels))


@dataclass(frozen=True)
class VerificationPair:
    """Two images and whether they show the same identity; ``fold`` is 0-based."""

    a: Path
    b: Path
    same: bool
    fold: int


@dataclass(frozen=True)
class VerificationDataset:
    """Image pairs split into folds for k-fold threshold selection (LFW protocol)."""

    name: str
    pairs: tuple[VerificationPair, ...]
    n_folds: int

    @property
    def same(self) -> npt.NDArray[np.bool_]:
        """``same`` of every pair, in order, as a boolean array."""
        return np.fromiter((p.same for p in self.pairs), dtype=np.bool_, count=len(self.pairs))

    @property
    def folds(self) -> npt.NDArray[np.int64]:
        """``fold`` of every pair, in order, as an integer array."""
        return np.fromiter((p.fold for p in self.pairs), dtype=np.int64, count=len(self.pairs))

    @property
    def images(self) -> tuple[Path, ...]:
        """Every distinct image used by the pairs, sorted (embed each once)."""
        return tuple(sorted({p.a for p in self.pairs} | {p.b for p in self.pairs}))


@dataclass(frozen=True)
class ClusteringDataset:
    """Images with an identity each, to be grouped without labels (people clustering)."""

    name: str
    images: tuple[Path, ...]
    labels: tuple[int, ...]


#: Any data set a registered loader may return.
Dataset = RetrievalDataset | VerificationDataset | ClusteringDataset | ClassesDataset
DATASET_TYPES = (RetrievalDataset, VerificationDataset, ClusteringDataset, ClassesDataset)
