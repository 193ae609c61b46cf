"""Search-quality and speed metrics, as the published protocols define them.

Pure functions over plain Python sequences and NumPy arrays; nothing here reads
images or files. Every function checks its arguments and raises
:class:`~lookalike.errors.ValidationError` ("expected X, got Y") on bad input.

Protocols followed:

* :func:`average_precision` / :func:`mean_average_precision` — Oxford Buildings
  (Philbin, Chum, Isard, Sivic & Zisserman, "Object retrieval with large
  vocabularies and fast spatial matching", CVPR 2007), official ``compute_ap.cpp``;
  identical to ``compute_ap`` in revisitop (Radenović et al., "Revisiting Oxford
  and Paris", CVPR 2018). Junk images are dropped from the ranking; precision is
  integrated with the trapezoidal rule.
* :func:`ns_score` — UKBench (Nistér & Stewénius, "Scalable recognition with a
  vocabulary tree", CVPR 2006): the number of the query's group of 4 images found
  in the top 4, the query itself included.
* :func:`recall_at_k` / :func:`top1` — the "hit" form of Recall@K used by image
  retrieval and face identification papers (e.g. Jégou et al. 2011, Sohn 2016):
  1 when at least one relevant item is in the top K, else 0.
* :func:`verification_accuracy_kfold` — Labeled Faces in the Wild (Huang et al.,
  "Labeled Faces in the Wild: A Database for Studying Face Recognition in
  Unconstrained Environments", 2007), View 2 "unrestricted" 10-fold protocol:
  the threshold for each fold is chosen on the other nine folds only.
"""

from __future__ import annotations

from collections.abc import Collection, Hashable, Iterable, Sequence
from typing import Any, TypeVar

import numpy as np
import numpy.typing as npt

from lookalike.errors import ValidationError, expect

__all__ = [
    "accuracy_at_threshold",
    "average_precision",
    "best_threshold",
    "latency_percentiles",
    "mean_average_precision",
    "ns_score",
    "recall_at_k",
    "top1",
    "verification_accuracy_kfold",
]

H = TypeVar("H", bound=Hashable)


# --------------------------------------------------------------------------- helpers


def _describe(value: object) -> str:
    """A short description of ``value`` for error messages."""
    if isinstance(value, np.ndarray):
        return f"array of dtype {value.dtype} and shape {value.shape}"
    text = repr(value)
    if len(text) > 60:
        text = text[:57] + "..."
    return f"{type(value).__name__} {text}"


def _check_ranked(ranked: object, name: str = "ranked") -> Sequence[Any]:
    if not isinstance(ranked, Sequence) or isinstance(ranked, str | bytes):
        raise ValidationError(
            f"expected {name} to be a sequence of item ids (a list or tuple), "
            f"got {_describe(ranked)}"
        )
    try:
        unique = len(set(ranked))
    except TypeError:
        raise ValidationError(
            f"expected {name} to hold hashable item ids, got {_describe(ranked)}"
        ) from None
    expect(
        unique == len(ranked),
        f"expected {name} to list each item at most once, got {len(ranked) - unique} repeated",
    )
    return ranked


def _check_set(items: object, name: str) -> frozenset[Any]:
    if not isinstance(items, Collection) or isinstance(items, str | bytes):
        raise ValidationError(
            f"expected {name} to be a collection of item ids (a set, list or tuple), "
            f"got {_describe(items)}"
        )
    try:
        return frozenset(items)
    except TypeError:
        raise ValidationError(
            f"expected {name} to hold hashable item ids, got {_describe(items)}"
        ) from None


def _check_positive_int(value: object, name: str) -> int:
    if not isinstance(value, int | np.integer) or isinstance(value, bool) or int(value) < 1:
        raise ValidationError(f"expected {name} to be an integer >= 1, got {_describe(value)}")
    return int(value)


# --------------------------------------------------------------------------- ranking


def average_precision(
    ranked: Sequence[H], positives: Collection[H], junk: Collection[H] = ()
) -> float:
    """Average precision of one ranking, with the official Oxford Buildings protocol.

    Follows ``compute_ap.cpp`` of Philbin et al. (CVPR 2007), the same computation
    as revisitop's ``compute_ap``:

    1. items in ``junk`` are removed from ``ranked`` (they count neither for nor
       against);
    2. for the i-th positive (0-based) found at rank r (0-based, counted after
       junk removal), ``precision_0 = i / r`` (1 when r == 0) and
       ``precision_1 = (i + 1) / (r + 1)``;
    3. ``AP = sum((precision_0 + precision_1) / 2) / n_positives`` — the area under
       the precision-recall curve by the trapezoidal rule.

    Positives that never appear in ``ranked`` count as not retrieved (they add
    nothing but still count in ``n_positives``), so a truncated ranking is
    penalised as in the official code.

    Args:
        ranked: item ids, best match first, each at most once. Any hashable ids
            work (file names, paths, integers) as long as all three arguments use
            the same kind.
        positives: the relevant ids ("good" + "ok" for Oxford). At least one.
        junk: ids to ignore. Must not overlap ``positives``.

    Returns:
        AP in [0, 1].

    Raises:
        ValidationError: no positives, repeated ids in ``ranked``, positives and
            junk overlapping, or arguments of the wrong type.
    """
    ranked = _check_ranked(ranked)
    pos = _check_set(positives, "positives")
    junk_set = _check_set(junk, "junk")
    expect(len(pos) > 0, "expected at least one positive, got 0")
    overlap = pos & junk_set
    expect(
        not overlap,
        f"expected positives and junk to be disjoint, got {len(overlap)} in both "
        f"(e.g. {sorted(map(repr, overlap))[:3]})",
    )
    n_pos = len(pos)
    ap = 0.0
    found = 0  # i: positives found so far
    rank = 0  # r: position after junk removal
    for item in ranked:
        if item in junk_set:
            continue
        if item in pos:
            precision_0 = found / rank if rank > 0 else 1.0
            precision_1 = (found + 1) / (rank + 1)
            ap += (precision_0 + precision_1) / 2.0 / n_pos
            found += 1
        rank += 1
    return ap


def mean_average_precision(
    queries: Iterable[tuple[Sequence[H], Collection[H], Collection[H]]],
) -> float:
    """Mean of :func:`average_precision` over queries (Oxford / Paris mAP).

    Args:
        queries: one ``(ranked, positives, junk)`` triple per query; a pair
            ``(ranked, positives)`` is accepted and means no junk.

    Raises:
        ValidationError: no queries, a malformed entry, or any error of
            :func:`average_precision` (the message names the query's index).
    """
    expect(
        isinstance(queries, Iterable) and not isinstance(queries, str | bytes),
        f"expected an iterable of (ranked, positives, junk) tuples, got {_describe(queries)}",
    )
    aps: list[float] = []
    for index, entry in enumerate(queries):
        expect(
            isinstance(entry, tuple | list) and len(entry) in (2, 3),
            f"expected query {index} to be a (ranked, positives, junk) tuple, "
            f"got {_describe(entry)}",
        )
        try:
            aps.append(average_precision(*entry))
        except ValidationError as error:
            raise ValidationError(f"query {index}: {error}") from None
    expect(len(aps) > 0, "expected at least one query, got 0")
    return float(np.mean(aps))


def ns_score(ranked: Sequence[H], relevant: Collection[H], top: int = 4) -> int:
    """UKBench N-S score of one query: how many ``relevant`` items are in the top ``top``.

    Nistér & Stewénius (CVPR 2006): each image queries the whole database and the
    score is the number of its object's 4 images (the query itself included) in
    the first 4 results, so 4 is perfect. Average it over queries for the
    reported figure.

    Raises:
        ValidationError: no relevant items, ``top`` < 1, repeated ids in ``ranked``.
    """
    ranked = _check_ranked(ranked)
    rel = _check_set(relevant, "relevant")
    top = _check_positive_int(top, "top")
    expect(len(rel) > 0, "expected at least one relevant item, got 0")
    return sum(1 for item in ranked[:top] if item in rel)


def recall_at_k(ranked: Sequence[H], relevant: Collection[H], k: int) -> float:
    """Recall@K in the "hit" form: 1.0 if any relevant item is in the top ``k``, else 0.0.

    This is the definition used by instance retrieval and face identification
    papers (Jégou et al., "Product quantization for nearest neighbor search",
    TPAMI 2011; Sohn, "Improved deep metric learning with multi-class N-pair loss",
    NeurIPS 2016), not the fraction of the relevant set retrieved. Average it over
    queries for the reported figure.

    Raises:
        ValidationError: no relevant items, ``k`` < 1, repeated ids in ``ranked``.
    """
    ranked = _check_ranked(ranked)
    rel = _check_set(relevant, "relevant")
    k = _check_positive_int(k, "k")
    expect(len(rel) > 0, "expected at least one relevant item, got 0")
    return 1.0 if any(item in rel for item in ranked[:k]) else 0.0


def top1(ranked: Sequence[H], relevant: Collection[H]) -> float:
    """Rank-1 identification accuracy of one query: :func:`recall_at_k` with k = 1."""
    return recall_at_k(ranked, relevant, 1)


# --------------------------------------------------------------------------- verification


def _check_scores_same(
    scores: object, same: object
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.bool_]]:
    expect(
        isinstance(scores, np.ndarray | Sequence) and not isinstance(scores, str | bytes),
        f"expected scores to be a 1-D array of floats, got {_describe(scores)}",
    )
    s = np.asarray(scores)
    expect(
        s.ndim == 1 and (s.dtype.kind in "fiu") and s.size > 0,
        f"expected scores to be a non-empty 1-D array of floats, got {_describe(s)}",
    )
    s = s.astype(np.float64)
    expect(bool(np.all(np.isfinite(s))), "expected finite scores, got NaN or infinity")
    expect(
        isinstance(same, np.ndarray | Sequence) and not isinstance(same, str | bytes),
        f"expected same to be a 1-D array of booleans, got {_describe(same)}",
    )
    b = np.asarray(same)
    expect(
        b.ndim == 1
        and (b.dtype == np.bool_ or (b.dtype.kind in "iu" and bool(np.all((b == 0) | (b == 1))))),
        f"expected same to be a 1-D array of booleans, got {_describe(b)}",
    )
    expect(
        b.shape == s.shape,
        f"expected scores and same of equal length, got {s.shape[0]} and {b.shape[0]}",
    )
    return s, b.astype(np.bool_)


def _candidate_thresholds(scores: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    unique = np.unique(scores)  # sorted
    midpoints = (unique[:-1] + unique[1:]) / 2.0
    # Ends: unique[0] predicts every pair "same"; the next float above the maximum
    # predicts every pair "different". Both are finite so they can be reported.
    above = np.nextafter(unique[-1], np.inf)
    return np.concatenate(([unique[0]], midpoints, [above]))


def _accuracies(
    scores: npt.NDArray[np.float64],
    same: npt.NDArray[np.bool_],
    thresholds: npt.NDArray[np.float64],
) -> npt.NDArray[np.float64]:
    """Accuracy of "same iff score >= t" for every t, in O((n + m) log n)."""
    pos = np.sort(scores[same])
    neg = np.sort(scores[~same])
    # same pairs correctly accepted: score >= t; different pairs correctly rejected: score < t
    true_accept = pos.size - np.searchsorted(pos, thresholds, side="left")
    true_reject = np.searchsorted(neg, thresholds, side="left")
    return np.asarray((true_accept + true_reject) / scores.size, dtype=np.float64)


def accuracy_at_threshold(scores: npt.ArrayLike, same: npt.ArrayLike, threshold: float) -> float:
    """Fraction of pairs classified right by "same iff score >= threshold".

    ``scores`` are similarities (higher = more alike); ``same`` the ground truth.
    """
    s, b = _check_scores_same(scores, same)
    expect(
        isinstance(threshold, float | int | np.floating | np.integer)
        and not isinstance(threshold, bool)
        and bool(np.isfinite(threshold)),
        f"expected a finite number as threshold, got {_describe(threshold)}",
    )
    return float(np.mean((s >= float(threshold)) == b))


def best_threshold(scores: npt.ArrayLike, same: npt.ArrayLike) -> tuple[float, float]:
    """The threshold that maximises accuracy on ``(scores, same)``, and that accuracy.

    Candidate thresholds are the midpoints between consecutive distinct scores,
    plus the two ends (the minimum score, which accepts every pair, and the next
    float above the maximum, which rejects every pair). Ties go to the lowest
    candidate, as in the reference LFW evaluation code (``np.argmax``).

    Returns:
        ``(threshold, accuracy)``; predict "same" when ``score >= threshold``.
    """
    s, b = _check_scores_same(scores, same)
    candidates = _candidate_thresholds(s)
    accuracies = _accuracies(s, b, candidates)
    best = int(np.argmax(accuracies))
    return float(candidates[best]), float(accuracies[best])


def verification_accuracy_kfold(
    scores: npt.ArrayLike,
    same: npt.ArrayLike,
    folds: npt.ArrayLike | int = 10,
) -> tuple[float, float, npt.NDArray[np.float64]]:
    """Pair-verification accuracy with the LFW k-fold protocol.

    For each fold f: the threshold is :func:`best_threshold` on all pairs *not*
    in f, and the accuracy is measured on f with that threshold. Reported figure
    is mean ± standard deviation over folds (population std, ``ddof=0``, as the
    common LFW evaluation scripts compute it).

    Args:
        scores: similarity of each pair (higher = more alike).
        same: True for a same-identity pair.
        folds: either a fold id per pair (any integers, at least two distinct
            values), or a number k of folds: the pairs are then cut into k
            contiguous blocks of (near) equal size, the layout of LFW View 2's
            ``pairs.txt`` (10 blocks of 300 same + 300 different).

    Returns:
        ``(mean_accuracy, std_accuracy, thresholds)`` where ``thresholds[i]`` is the
        threshold used to test the i-th fold, folds in ascending order of id.
    """
    s, b = _check_scores_same(scores, same)
    n = s.size
    if isinstance(folds, int | np.integer) and not isinstance(folds, bool):
        k = int(folds)
        expect(2 <= k <= n, f"expected between 2 and {n} folds (one per pair at most), got {k}")
        fold_ids = np.empty(n, dtype=np.int64)
        for f, block in enumerate(np.array_split(np.arange(n), k)):
            fold_ids[block] = f
    else:
        expect(
            isinstance(folds, np.ndarray | Sequence) and not isinstance(folds, str | bytes),
            f"expected folds to be an int or a 1-D array of fold ids, got {_describe(folds)}",
        )
        fold_ids = np.asarray(folds)
        expect(
            fold_ids.ndim == 1 and fold_ids.dtype.kind in "iu",
            f"expected folds to be a 1-D array of integer fold ids, got {_describe(fold_ids)}",
        )
        expect(
            fold_ids.shape == s.shape,
            f"expected one fold id per pair ({n}), got {fold_ids.shape[0]}",
        )
    labels = np.unique(fold_ids)
    expect(labels.size >= 2, f"expected at least 2 distinct folds, got {labels.size}")
    thresholds = np.empty(labels.size, dtype=np.float64)
    accuracies = np.empty(labels.size, dtype=np.float64)
    for index, label in enumerate(labels):
        test = fold_ids == label
        train = ~test
        threshold, _ = best_threshold(s[train], b[train])
        thresholds[index] = threshold
        accuracies[index] = np.mean((s[test] >= threshold) == b[test])
    return float(np.mean(accuracies)), float(np.std(accuracies)), thresholds


# --------------------------------------------------------------------------- clustering


def pairwise_clustering_scores(truth: npt.ArrayLike, predicted: npt.ArrayLike) -> dict[str, Any]:
    """Pairwise precision, recall and F-measure of a clustering, with error counts.

    Over all pairs of items: precision = pairs put together that belong together /
    pairs put together; recall = the same / pairs that belong together. ``splits``
    counts, over true groups, the extra clusters each is spread over; ``merges``
    counts, over predicted clusters, the extra true groups each mixes.
    """
    t, p = np.asarray(truth), np.asarray(predicted)
    expect(t.ndim == 1 and p.shape == t.shape and t.size > 0,
           f"expected two non-empty label arrays of equal length, got {t.shape} and {p.shape}")
    _, t_ids = np.unique(t, return_inverse=True)
    _, p_ids = np.unique(p, return_inverse=True)
    t_ids, p_ids = t_ids.reshape(-1), p_ids.reshape(-1)
    joint = np.unique(t_ids * (p_ids.max() + 1) + p_ids, return_counts=True)[1]

    def pairs(counts: npt.NDArray[np.int64]) -> int:
        return int(np.sum(counts * (counts - 1) // 2))

    together = pairs(joint)
    predicted_pairs = pairs(np.bincount(p_ids))
    true_pairs = pairs(np.bincount(t_ids))
    precision = together / predicted_pairs if predicted_pairs else 1.0
    recall = together / true_pairs if true_pairs else 1.0
    f = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    combos = np.unique(np.stack([t_ids, p_ids]), axis=1)
    splits = int(np.sum(np.bincount(combos[0]) - 1))
    merges = int(np.sum(np.bincount(combos[1]) - 1))
    return {"precision": precision, "recall": recall, "f_measure": f,
            "clusters": int(p_ids.max()) + 1, "true_clusters": int(t_ids.max()) + 1,
            "splits": splits, "merges": merges}


# --------------------------------------------------------------------------- speed


def latency_percentiles(seconds: Sequence[float] | npt.ArrayLike) -> dict[str, float]:
    """Median and tail latency of a list of timings.

    Percentiles use linear interpolation between order statistics (NumPy's
    default, "type 7" of Hyndman & Fan 1996).

    Args:
        seconds: one wall-clock duration per request, in seconds, each >= 0.

    Returns:
        ``{"p50_ms": ..., "p99_ms": ..., "mean_ms": ..., "max_ms": ..., "n": ...}``,
        times in milliseconds (``n`` is the number of timings).
    """
    expect(
        isinstance(seconds, np.ndarray | Sequence) and not isinstance(seconds, str | bytes),
        f"expected a sequence of durations in seconds, got {_describe(seconds)}",
    )
    t = np.asarray(seconds)
    expect(
        t.ndim == 1 and t.size > 0 and t.dtype.kind in "fiu",
        f"expected a non-empty 1-D sequence of durations in seconds, got {_describe(t)}",
    )
    t = t.astype(np.float64)
    expect(
        bool(np.all(np.isfinite(t))) and bool(np.all(t >= 0)),
        f"expected finite durations >= 0, got min {float(np.min(t))!r}",
    )
    ms = t * 1000.0
    p50, p99 = np.percentile(ms, [50.0, 99.0])
    return {
        "p50_ms": float(p50),
        "p99_ms": float(p99),
        "mean_ms": float(np.mean(ms)),
        "max_ms": float(np.max(ms)),
        "n": int(t.size),
    }
