"""Metrics against hand-computed values (the arithmetic is in the comments)."""

from __future__ import annotations

import random

import numpy as np
import pytest

from lookalike.errors import LookalikeError, ValidationError
from lookalike.eval import metrics
from lookalike.eval.class_metrics import class_retrieval_scores
from lookalike.eval.metrics import (
    accuracy_at_threshold,
    average_precision,
    best_threshold,
    latency_percentiles,
    mean_average_precision,
    ns_score,
    recall_at_k,
    top1,
    verification_accuracy_kfold,
)

# --------------------------------------------------------------------------- average precision


def _ap_compute_ap_cpp(ranked: list[str], pos: set[str], junk: set[str]) -> float:
    """Literal transcription of Oxford's compute_ap.cpp (recall-step form), as a cross-check."""
    old_recall, old_precision, ap = 0.0, 1.0, 0.0
    intersect, j = 0, 0
    for item in ranked:
        if item in junk:
            continue
        if item in pos:
            intersect += 1
        recall = intersect / len(pos)
        precision = intersect / (j + 1.0)
        ap += (recall - old_recall) * ((old_precision + precision) / 2.0)
        old_recall, old_precision = recall, precision
        j += 1
    return ap


def test_ap_with_junk_hand_computed() -> None:
    # ranking [p1, n, j, p2], positives {p1, p2}, junk {j}
    # junk removed -> [p1, n, p2]
    #   p1: i=0, r=0 -> precision_0 = 1,   precision_1 = 1/1 = 1   -> (1 + 1)/2 * 1/2   = 1/2
    #   p2: i=1, r=2 -> precision_0 = 1/2, precision_1 = 2/3       -> (1/2 + 2/3)/2 * 1/2 = 7/24
    # AP = 12/24 + 7/24 = 19/24
    ap = average_precision(["p1", "n", "j", "p2"], {"p1", "p2"}, {"j"})
    assert ap == pytest.approx(19 / 24)


def test_ap_junk_counted_as_negative_if_not_declared() -> None:
    # without junk: p2 at r=3 -> (1/3 + 2/4)/2 * 1/2 = 5/24; AP = 12/24 + 5/24 = 17/24
    assert average_precision(["p1", "n", "j", "p2"], {"p1", "p2"}) == pytest.approx(17 / 24)


def test_ap_trapezoid_not_plain_precision() -> None:
    # [n, p], one positive: r=1, i=0 -> precision_0 = 0/1, precision_1 = 1/2 -> AP = 1/4
    # (the non-interpolated AP would be 1/2)
    assert average_precision(["n", "p"], ["p"]) == pytest.approx(0.25)


def test_ap_perfect_ranking_is_one() -> None:
    assert average_precision(["a", "b", "c", "x", "y"], {"a", "b", "c"}) == pytest.approx(1.0)
    # junk in front does not hurt
    assert average_precision(["j", "a", "b"], {"a", "b"}, {"j"}) == pytest.approx(1.0)


def test_ap_missing_positive_lowers_ap() -> None:
    # [p1, n] with positives {p1, p2}: p1 gives (1+1)/2 * 1/2 = 1/2, p2 never found -> AP = 1/2
    assert average_precision(["p1", "n"], {"p1", "p2"}) == pytest.approx(0.5)
    assert average_precision(["p1", "n"], {"p1"}) == pytest.approx(1.0)


def test_ap_no_positive_retrieved_is_zero() -> None:
    assert average_precision(["a", "b"], {"z"}) == 0.0


def test_ap_matches_compute_ap_cpp_on_random_rankings() -> None:
    rng = random.Random(0)
    for _ in range(200):
        items = [f"i{n}" for n in range(rng.randint(1, 30))]
        rng.shuffle(items)
        pos = set(rng.sample(items, rng.randint(1, len(items))))
        rest = [x for x in items if x not in pos]
        junk = set(rng.sample(rest, rng.randint(0, len(rest))))
        ranked = items[: rng.randint(0, len(items))]  # truncation drops some positives
        expected = _ap_compute_ap_cpp(ranked, pos, junk)
        assert average_precision(ranked, pos, junk) == pytest.approx(expected)


def test_ap_accepts_paths_and_ints() -> None:
    assert average_precision([3, 1, 2], {3}) == pytest.approx(1.0)


def test_mean_average_precision() -> None:
    # query 1: AP 19/24 (above); query 2: AP 1/4 (above) -> mean = (19/24 + 6/24)/2 = 25/48
    queries = [
        (["p1", "n", "j", "p2"], {"p1", "p2"}, {"j"}),
        (["n", "p"], {"p"}, set()),
    ]
    assert mean_average_precision(queries) == pytest.approx(25 / 48)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((["a"], set()), "at least one positive"),
        ((["a", "a"], {"a"}), "at most once"),
        (("abc", {"a"}), "sequence of item ids"),
        ((["a"], "a"), "collection of item ids"),
        ((["a", "b"], {"a"}, {"a"}), "disjoint"),
        (([["unhashable"]], {"a"}), "hashable"),
    ],
)
def test_ap_validation(args: tuple[object, ...], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        average_precision(*args)


def test_map_validation() -> None:
    with pytest.raises(ValidationError, match="at least one query"):
        mean_average_precision([])
    with pytest.raises(ValidationError, match="query 1: expected at least one positive"):
        mean_average_precision([(["a"], {"a"}, set()), (["a"], set(), set())])
    with pytest.raises(ValidationError, match="tuple"):
        mean_average_precision([("a",)])


def test_validation_error_is_lookalike_and_value_error() -> None:
    with pytest.raises(LookalikeError):
        average_precision([], set())
    with pytest.raises(ValueError):
        average_precision([], set())


# --------------------------------------------------------------------------- N-S, recall, top-1


def test_ns_score() -> None:
    # top 4 of [q, a, x, b, c] = q, a, x, b -> relevant q, a, b -> 3 (the query counts)
    assert ns_score(["q", "a", "x", "b", "c"], {"q", "a", "b", "c"}) == 3
    assert ns_score(["q", "a", "b", "c"], {"q", "a", "b", "c"}) == 4
    assert ns_score(["x", "y"], {"q", "a", "b", "c"}) == 0
    assert ns_score(["q", "a", "x", "b"], {"q", "a", "b", "c"}, top=2) == 2


def test_recall_at_k_is_hit_rate() -> None:
    ranked = ["x", "y", "a", "b"]
    assert recall_at_k(ranked, {"a", "b"}, 1) == 0.0
    assert recall_at_k(ranked, {"a", "b"}, 2) == 0.0
    assert recall_at_k(ranked, {"a", "b"}, 3) == 1.0  # one hit is enough, not 1/2
    assert recall_at_k(ranked, {"a", "b"}, 100) == 1.0
    assert top1(["a", "x"], {"a"}) == 1.0
    assert top1(["x", "a"], {"a"}) == 0.0


@pytest.mark.parametrize("k", [0, -1, 1.5, True])
def test_recall_bad_k(k: object) -> None:
    with pytest.raises(ValidationError, match="integer >= 1"):
        recall_at_k(["a"], {"a"}, k)
    with pytest.raises(ValidationError, match="integer >= 1"):
        ns_score(["a"], {"a"}, top=k)


def test_ns_recall_need_relevant() -> None:
    with pytest.raises(ValidationError, match="at least one relevant"):
        ns_score(["a"], set())
    with pytest.raises(ValidationError, match="at least one relevant"):
        recall_at_k(["a"], [], 1)


# --------------------------------------------------------------------------- verification


def test_accuracy_at_threshold() -> None:
    scores = np.array([0.1, 0.5, 0.9])
    same = np.array([False, True, True])
    # >= 0.5 -> [F, T, T]: all right
    assert accuracy_at_threshold(scores, same, 0.5) == 1.0
    # >= 0.6 -> [F, F, T]: 0.5 wrong -> 2/3
    assert accuracy_at_threshold(scores, same, 0.6) == pytest.approx(2 / 3)


def test_best_threshold_known_case() -> None:
    scores = np.array([0.1, 0.2, 0.3, 0.35, 0.4, 0.6, 0.9])
    same = np.array([False, False, True, True, False, True, True])
    # candidates: 0.1 (all same), midpoints 0.15 0.25 0.325 0.375 0.5 0.75, max+ (all different)
    #   0.1  -> wrong 0.1, 0.2, 0.4       -> 4/7
    #   0.15 -> wrong 0.2, 0.4            -> 5/7
    #   0.25 -> wrong 0.4                 -> 6/7  <- unique best
    #   0.325-> wrong 0.3, 0.4            -> 5/7
    #   0.375-> wrong 0.3, 0.35, 0.4      -> 4/7
    #   0.5  -> wrong 0.3, 0.35           -> 5/7
    #   0.75 -> wrong 0.3, 0.35, 0.6      -> 4/7
    #   max+ -> wrong 0.3, 0.35, 0.6, 0.9 -> 3/7
    threshold, accuracy = best_threshold(scores, same)
    assert threshold == pytest.approx(0.25)
    assert accuracy == pytest.approx(6 / 7)


def test_best_threshold_ends() -> None:
    # all same -> lowest score accepts everything
    threshold, accuracy = best_threshold(np.array([0.3, 0.7]), np.array([True, True]))
    assert (threshold, accuracy) == (0.3, 1.0)
    # all different -> a threshold just above the max rejects everything
    threshold, accuracy = best_threshold(np.array([0.3, 0.7]), np.array([False, False]))
    assert threshold > 0.7 and threshold == pytest.approx(0.7) and accuracy == 1.0


def test_best_threshold_tie_goes_to_lowest() -> None:
    # [0.1 F, 0.35 T, 0.4 F, 0.8 T]: midpoints 0.225 and 0.6 both give 3/4 -> 0.225
    threshold, accuracy = best_threshold(
        np.array([0.1, 0.4, 0.35, 0.8]), np.array([False, False, True, True])
    )
    assert threshold == pytest.approx(0.225) and accuracy == pytest.approx(0.75)


def test_kfold_separable_is_perfect() -> None:
    rng = np.random.default_rng(0)
    same = rng.random(600) < 0.5
    scores = np.where(same, rng.uniform(0.6, 1.0, 600), rng.uniform(-1.0, 0.4, 600))
    mean, std, thresholds = verification_accuracy_kfold(scores, same, 10)
    assert mean == 1.0 and std == 0.0
    assert thresholds.shape == (10,)
    assert np.all((thresholds > 0.4) & (thresholds < 0.6))


def test_kfold_known_thresholds() -> None:
    # dyadic values so the midpoints are exact
    scores = np.array([0.125, 0.25, 0.625, 0.75, 0.375, 0.4375, 0.5, 1.0])
    same = np.array([False, False, True, True, False, False, True, True])
    folds = np.array([0, 0, 0, 0, 1, 1, 1, 1])
    # test fold 0, train on fold 1: sorted 0.375 F, 0.4375 F, 0.5 T, 1.0 T
    #   -> best midpoint (0.4375 + 0.5)/2 = 0.46875 (100 %); on fold 0: all right -> 1.0
    # test fold 1, train on fold 0: sorted 0.125 F, 0.25 F, 0.625 T, 0.75 T
    #   -> best midpoint (0.25 + 0.625)/2 = 0.4375; on fold 1: 0.4375 >= 0.4375 is called
    #      "same" but is different -> 3/4
    # mean (1 + 0.75)/2 = 0.875, std |1 - 0.875| = 0.125
    mean, std, thresholds = verification_accuracy_kfold(scores, same, folds)
    assert thresholds.tolist() == [0.46875, 0.4375]
    assert mean == pytest.approx(0.875)
    assert std == pytest.approx(0.125)
    # an int means contiguous equal blocks: 2 -> the same [0]*4 + [1]*4 split
    assert verification_accuracy_kfold(scores, same, 2)[0] == pytest.approx(0.875)
    # fold ids need not be 0..k-1; thresholds come in ascending order of id
    _, _, by_label = verification_accuracy_kfold(scores, same, folds * 5 + 3)
    assert by_label.tolist() == [0.46875, 0.4375]


def test_kfold_accepts_integer_same_and_lists() -> None:
    mean, _, _ = verification_accuracy_kfold([0.1, 0.9, 0.2, 0.8], [0, 1, 0, 1], 2)
    assert mean == 1.0


@pytest.mark.parametrize(
    ("scores", "same", "folds", "message"),
    [
        ([0.1, 0.2], [True], 2, "equal length"),
        ([], [], 2, "non-empty"),
        ([[0.1]], [True], 2, "1-D"),
        ([0.1, float("nan")], [True, False], 2, "finite"),
        ([0.1, 0.2], [2, 0], 2, "booleans"),
        ([0.1, 0.2], [True, False], 1, "between 2 and 2 folds"),
        ([0.1, 0.2], [True, False], 3, "between 2 and 2 folds"),
        ([0.1, 0.2], [True, False], np.array([0, 0]), "at least 2 distinct folds"),
        ([0.1, 0.2], [True, False], np.array([0, 1, 1]), "one fold id per pair"),
        ([0.1, 0.2], [True, False], np.array([0.0, 1.0]), "integer fold ids"),
        ("ab", [True, False], 2, "scores"),
    ],
)
def test_kfold_validation(scores: object, same: object, folds: object, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        verification_accuracy_kfold(scores, same, folds)


def test_threshold_validation() -> None:
    with pytest.raises(ValidationError, match="finite number as threshold"):
        accuracy_at_threshold([0.1], [True], float("inf"))
    with pytest.raises(ValidationError, match="equal length"):
        best_threshold([0.1, 0.2], [True])


# --------------------------------------------------------------------------- latency


def test_latency_percentiles() -> None:
    # 1..100 ms: p50 = 50.5 ms, p99 = 99 + 0.01*(100-99) = 99.01 ms (linear interpolation)
    result = latency_percentiles([n / 1000 for n in range(1, 101)])
    assert result["p50_ms"] == pytest.approx(50.5)
    assert result["p99_ms"] == pytest.approx(99.01)
    assert result["mean_ms"] == pytest.approx(50.5)
    assert result["max_ms"] == pytest.approx(100.0)
    assert result["n"] == 100
    assert latency_percentiles([0.002])["p99_ms"] == pytest.approx(2.0)


@pytest.mark.parametrize("bad", [[], [-0.1], [float("nan")], "12", [[0.1]]])
def test_latency_validation(bad: object) -> None:
    with pytest.raises(ValidationError, match="expected"):
        latency_percentiles(bad)


def _reference_class_scores(vectors: np.ndarray, labels: list[str]) -> dict[str, float]:
    """Query by query, with the metrics of one ranking: the reference for the matrix form."""
    normed = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    found: dict[str, list[float]] = {"map_at_r": [], **{f"recall_at_{k}": [] for k in (1, 2, 4, 8)}}
    for i, label in enumerate(labels):
        relevant = {j for j, other in enumerate(labels) if other == label and j != i}
        if not relevant:
            continue
        order = sorted((j for j in range(len(labels)) if j != i),
                       key=lambda j: (-float(normed[i] @ normed[j]), j))
        for k in (1, 2, 4, 8):
            found[f"recall_at_{k}"].append(metrics.recall_at_k(order, relevant, k))
        r = len(relevant)
        hits = [j in relevant for j in order[:r]]
        found["map_at_r"].append(sum(sum(hits[:n + 1]) / (n + 1) for n in range(r)
                                     if hits[n]) / r)
    return {key: float(np.mean(values)) for key, values in found.items()}


def test_class_retrieval_scores_match_a_query_by_query_reference() -> None:
    rng = np.random.default_rng(3)
    labels = [str(c) for c in rng.integers(0, 7, 60)] + ["lonely"]
    vectors = rng.normal(size=(61, 8)) + np.array([int(c) if c != "lonely" else 0
                                                   for c in labels])[:, None] * 0.4
    vectors[5] = vectors[9]  # a tie, broken by index in both
    got = class_retrieval_scores(vectors, labels, block=16)
    expected = _reference_class_scores(vectors, labels)
    assert got == pytest.approx(expected)
    # By hand: a, a, b, b on a line; the first a's nearest is b (wrong), then a.
    line = np.array([[1.0, 0.0], [0.0, 1.0], [0.9, 0.1], [0.0, 1.0]])
    hand = class_retrieval_scores(line, ["a", "a", "b", "b"], ks=(1,))
    # queries: 0 -> 2 (b) wrong; 1 -> 3 (b) wrong; 2 -> 0 wrong; 3 -> 1 wrong.
    assert hand == {"recall_at_1": 0.0, "map_at_r": 0.0}
    with pytest.raises(ValidationError, match="two items or more"):
        class_retrieval_scores(line, ["a", "b", "c", "d"])


def test_class_retrieval_scores_can_let_only_some_rows_query() -> None:
    rng = np.random.default_rng(5)
    labels = [str(c) for c in rng.integers(0, 4, 30)]
    vectors = rng.normal(size=(30, 6))
    asking = np.array([0, 3, 7, 12])
    got = class_retrieval_scores(vectors, labels, queries=asking)
    every = _reference_rows(vectors, labels)
    assert got["recall_at_1"] == pytest.approx(np.mean([every[i]["recall_at_1"]
                                                        for i in asking if i in every]))


def _reference_rows(vectors: np.ndarray, labels: list[str]) -> dict[int, dict[str, float]]:
    normed = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    rows = {}
    for i, label in enumerate(labels):
        relevant = {j for j, other in enumerate(labels) if other == label and j != i}
        if relevant:
            best = max((j for j in range(len(labels)) if j != i),
                       key=lambda j: (float(normed[i] @ normed[j]), -j))
            rows[i] = {"recall_at_1": float(best in relevant)}
    return rows
