"""The metric-learning protocol's figures: Recall@K and MAP@R over a set of labelled
vectors, every one querying all the others."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from lookalike.errors import expect


def class_retrieval_scores(vectors: npt.ArrayLike, labels: Sequence[Any], *,
                           ks: Sequence[int] = (1, 2, 4, 8), block: int = 1024,
                           queries: npt.ArrayLike | None = None) -> dict[str, float]:
    """The metric-learning protocol: every item queries all the others by cosine similarity
    (the rows of ``vectors`` are normalised here), and an item of its class is a right
    answer. Items alone in their class query nothing.

    - ``recall_at_k``: the fraction of queries with an item of their class among their
      ``k`` nearest (Recall@K in the "hit" form of Song et al., CVPR 2016, as CUB-200,
      Cars196 and Stanford Online Products report it);
    - ``map_at_r``: MAP@R (Musgrave et al., "A Metric Learning Reality Check", ECCV 2020):
      with R the other items of the query's class, the mean over queries of
      (1/R) * sum over the R nearest of precision@i at each right answer.

    Ties in similarity rank the lower index first. ``queries`` (row indices) lets only
    those rows query, the others being the gallery only (new images of known classes
    searched against the rest).
    """
    matrix = np.asarray(vectors, dtype=np.float32)
    expect(matrix.ndim == 2 and len(matrix) == len(labels),
           f"expected one vector per label, got {matrix.shape} for {len(labels)} labels")
    expect(all(isinstance(k, int) and k >= 1 for k in ks), f"expected k >= 1, got {list(ks)}")
    matrix = matrix / np.maximum(np.linalg.norm(matrix, axis=1, keepdims=True), 1e-12)
    _, codes = np.unique(np.asarray(labels, dtype=object).astype(str), return_inverse=True)
    others = np.bincount(codes)[codes] - 1  # R of every item
    asking = np.flatnonzero(others > 0)
    if queries is not None:
        asking = np.intersect1d(asking, np.asarray(queries, dtype=np.int64))
    queries = asking
    expect(len(queries) > 0, "expected a class with two items or more, got none")
    depth = min(len(matrix) - 1, max(max(ks), int(others.max())))
    hits = {k: 0.0 for k in ks}
    map_at_r = 0.0
    for start in range(0, len(queries), block):
        rows = queries[start:start + block]
        similarity = matrix[rows] @ matrix.T
        similarity[np.arange(len(rows)), rows] = -np.inf  # not itself
        # Best first, ties by index: a stable sort of the negated similarities.
        nearest = np.argsort(-similarity, axis=1, kind="stable")[:, :depth]
        right = codes[nearest] == codes[rows][:, None]
        for k in ks:
            hits[k] += float(right[:, :k].any(axis=1).sum())
        r = others[rows]
        within = np.arange(depth)[None, :] < r[:, None]
        precision = np.cumsum(right, axis=1) / np.arange(1, depth + 1)[None, :]
        map_at_r += float(((precision * right * within).sum(axis=1) / r).sum())
    return {**{f"recall_at_{k}": hits[k] / len(queries) for k in ks},
            "map_at_r": map_at_r / len(queries)}
