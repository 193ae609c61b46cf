"""Plain k-means for the nodes of the vocabulary tree.

Each node clusters only the descriptors that reached it, into ``k`` (10) groups,
so the work is many small problems and a few large ones. Lloyd's iterations on
BLAS matrix products handle both well on a CPU, with no extra dependency, and
a fixed seed makes a tree reproducible.
"""

from __future__ import annotations

import numpy as np


def squared_distances(points: np.ndarray, centres: np.ndarray) -> np.ndarray:
    """(n, k) squared Euclidean distances, through one matrix product."""
    cross = points @ centres.T
    distances = np.maximum((centres * centres).sum(axis=1)[None, :] - 2.0 * cross
                           + (points * points).sum(axis=1)[:, None], 0.0)
    return np.asarray(distances, dtype=np.float32)


def kmeans(points: np.ndarray, k: int, *, iterations: int = 20, seed: int = 0,
           max_sample_per_centre: int = 512) -> tuple[np.ndarray, np.ndarray]:
    """Cluster ``points`` into at most ``k`` groups: (centres, label of each point).

    Centres start by k-means++ and are refined by Lloyd's iterations on at most
    ``max_sample_per_centre * k`` points (a random subset, as faiss does); every point is then
    labelled with its nearest centre. Empty clusters are dropped, so fewer than
    ``k`` centres may come back when points repeat.
    """
    points = np.ascontiguousarray(points, dtype=np.float32)
    rng = np.random.default_rng(seed)
    max_sample = max_sample_per_centre * k
    sample = points if len(points) <= max_sample else points[
        rng.choice(len(points), max_sample, replace=False)]
    centres = _kmeans_plus_plus(sample, k, rng)
    for _ in range(iterations):
        labels = squared_distances(sample, centres).argmin(axis=1)
        counts = np.bincount(labels, minlength=len(centres))
        sums = _sum_by_label(labels, sample, len(centres))
        moved = counts > 0
        updated = centres.copy()
        updated[moved] = sums[moved] / counts[moved, None]
        if np.allclose(updated, centres, atol=1e-6):
            centres = updated
            break
        centres = updated
    labels = squared_distances(points, centres).argmin(axis=1)
    used = np.unique(labels)
    remap = np.full(len(centres), -1, dtype=np.int64)
    remap[used] = np.arange(len(used))
    return centres[used], remap[labels]


def _sum_by_label(labels: np.ndarray, points: np.ndarray, k: int) -> np.ndarray:
    """Per-cluster sums as one (k, n) @ (n, d) product: far faster than np.add.at."""
    one_hot = np.zeros((k, len(points)), dtype=np.float32)
    one_hot[labels, np.arange(len(points))] = 1.0
    return np.asarray(one_hot @ points, dtype=np.float32)


def _kmeans_plus_plus(points: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """k-means++ seeding: each next centre drawn in proportion to its squared distance."""
    k = min(k, len(points))
    chosen = [int(rng.integers(len(points)))]
    nearest = squared_distances(points, points[chosen]).ravel().astype(np.float64)
    for _ in range(1, k):
        total = float(nearest.sum())
        if total <= 0.0:
            break  # every point coincides with a centre already
        pick = int(rng.choice(len(points), p=nearest / total))
        chosen.append(pick)
        nearest = np.minimum(nearest, squared_distances(points, points[pick : pick + 1]).ravel())
        nearest[pick] = 0.0
    return points[chosen].copy()
