"""Clustering face vectors into people.

Two algorithms behind one signature, ``cluster(vectors, threshold) -> labels``,
where ``vectors`` are unit rows and ``threshold`` is the cosine similarity above
which two faces may be the same person:

* ``chinese-whispers`` (default; Biemann 2006, as in dlib and FaceNet-style photo
  tools): a graph with an edge between faces above the threshold, weighted by how
  far the similarity clears it; each node repeatedly takes the label with the
  largest edge weight among its neighbours. Linear in the number of edges; finds the number of
  people by itself.
* ``agglomerative``: average-linkage hierarchical clustering cut at the
  threshold (SciPy). Quadratic memory, so meant for up to ~20k faces.

Labels are 0..n_clusters-1, numbered by first appearance.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from lookalike.errors import expect
from lookalike.registry import Registry

_BLOCK_FLOATS = 1 << 26  # similarities held at once (256 MB of float32)


def similarity_graph(vectors: np.ndarray, threshold: float,
                     max_neighbours: int = 100) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Edges (i, j, similarity) with i != j and similarity >= threshold, both directions,
    keeping each node's ``max_neighbours`` most similar."""
    n = len(vectors)
    sources, targets, weights = [], [], []
    step = max(1, min(2048, _BLOCK_FLOATS // max(n, 1)))  # bounded memory at any n
    for start in range(0, n, step):
        block = vectors[start:start + step] @ vectors.T
        rows = np.arange(start, min(start + step, n))
        block[rows - start, rows] = -np.inf  # no self-loops
        if block.shape[1] > max_neighbours:
            cut = np.argpartition(-block, max_neighbours - 1, axis=1)[:, :max_neighbours]
        else:
            cut = np.broadcast_to(np.arange(block.shape[1]), block.shape)
        taken = np.take_along_axis(block, cut, axis=1)
        keep = taken >= threshold
        sources.append(np.repeat(rows, keep.sum(axis=1)))
        targets.append(cut[keep])
        weights.append(taken[keep])
    if not sources:
        empty = np.empty(0, dtype=np.int64)
        return empty, empty, np.empty(0, dtype=np.float32)
    return (np.concatenate(sources).astype(np.int64), np.concatenate(targets).astype(np.int64),
            np.concatenate(weights).astype(np.float32))


def chinese_whispers(vectors: np.ndarray, threshold: float, *, iterations: int = 30,
                     seed: int = 0, weighting: str = "margin") -> np.ndarray:
    """``weighting="margin"`` weighs an edge by how far it clears the threshold;
    ``"similarity"`` by the similarity itself, as the original algorithm does."""
    expect(weighting in ("margin", "similarity"),
           f"expected weighting 'margin' or 'similarity', got {weighting!r}")
    n = len(vectors)
    sources, targets, similarities = similarity_graph(vectors, threshold)
    # Face similarities all lie near 1, so with raw weights a large cluster wins every
    # vote through many weak edges and swallows its neighbours; margins let the strong
    # edges decide (measured on LFW in BENCHMARKS.md).
    weights = similarities - threshold + 1e-3 if weighting == "margin" else similarities
    order = np.argsort(sources, kind="stable")
    sources, targets, weights = sources[order], targets[order], weights[order]
    starts = np.searchsorted(sources, np.arange(n + 1))
    labels = np.arange(n)
    rng = np.random.default_rng(seed)
    for _ in range(iterations):
        changed = 0
        for node in rng.permutation(n):
            lo, hi = starts[node], starts[node + 1]
            if lo == hi:
                continue
            neighbour_labels = labels[targets[lo:hi]]
            totals: dict[int, float] = {}
            for label, weight in zip(neighbour_labels.tolist(), weights[lo:hi].tolist(),
                                     strict=True):
                totals[label] = totals.get(label, 0.0) + weight
            best = max(totals.items(), key=lambda item: (item[1], -item[0]))[0]
            if best != labels[node]:
                labels[node] = best
                changed += 1
        if not changed:
            break
    return renumber(labels)


def agglomerative(vectors: np.ndarray, threshold: float) -> np.ndarray:
    try:
        from scipy.cluster.hierarchy import fcluster, linkage
    except ImportError as error:
        from lookalike.errors import MissingDependencyError

        raise MissingDependencyError("scipy", "agglomerative face clustering", "faces") from error
    if len(vectors) < 2:
        return np.zeros(len(vectors), dtype=np.int64)
    tree = linkage(vectors.astype(np.float64), method="average", metric="cosine")
    # scipy's cosine distance is 1 - similarity.
    return renumber(fcluster(tree, t=1.0 - threshold, criterion="distance"))


def renumber(labels: np.ndarray) -> np.ndarray:
    """Labels 0, 1, 2, ... in order of first appearance."""
    _, first, inverse = np.unique(labels, return_index=True, return_inverse=True)
    rank = np.empty(len(first), dtype=np.int64)
    rank[np.argsort(first)] = np.arange(len(first))
    result: np.ndarray = rank[inverse.reshape(-1)]
    return result


Clusterer = Callable[[np.ndarray, float], np.ndarray]
CLUSTERERS: Registry[Clusterer] = Registry("clustering algorithm", group="lookalike.clusterers")
CLUSTERERS.add("chinese-whispers", chinese_whispers)
CLUSTERERS.add("agglomerative", agglomerative)


def cluster_faces(vectors: np.ndarray, threshold: float,
                  algorithm: str = "chinese-whispers") -> np.ndarray:
    """People labels for unit face vectors; see the module docstring."""
    clusterer = CLUSTERERS.get(algorithm)
    matrix = np.asarray(vectors, dtype=np.float32)
    expect(matrix.ndim == 2, f"expected an (n, dim) matrix of face vectors, got {matrix.shape}")
    if len(matrix) == 0:
        return np.empty(0, dtype=np.int64)
    return clusterer(matrix, threshold)
