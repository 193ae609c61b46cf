"""The learned ranker: features per candidate, training, persistence, clicks as judgements."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from lookalike.collection import Feedback
from lookalike.errors import CollectionError, NotFoundError, ValidationError
from lookalike.ranking import (
    Judged,
    LearnedRanker,
    candidate_features,
    evidence_features,
    feature_names,
    train_ranker,
)
from lookalike.results import FusedEvidence, Hit, LocalEvidence, TextEvidence
from lookalike.storage import Catalog

pytest.importorskip("sklearn")


def test_candidate_features_by_hand() -> None:
    rankings = {"global": [Hit(7, 0.9), Hit(8, 0.5)],
                "local": [Hit(8, 30.0, LocalEvidence(inliers=20, verified=True))],
                "text": [Hit(9, 0.03, TextEvidence(bm25=2.5, semantic=0.6))]}
    channels = ["global", "local", "text"]
    ids, matrix = candidate_features(rankings, channels)
    names = feature_names(channels, evidence_features([rankings], channels))
    assert names[9:] == ["local_inliers", "text_bm25", "text_semantic", "rrf", "channels_found"]
    assert sorted(ids) == [7, 8, 9] and matrix.shape == (3, len(names))
    row = dict(zip(names, matrix[ids.index(8)], strict=True))
    assert row["global_score"] == 0.5 and row["global_reciprocal_rank"] == 0.5
    assert row["local_found"] == 1.0 and row["local_inliers"] == pytest.approx(np.log1p(20))
    assert row["text_found"] == 0.0 and row["channels_found"] == 2.0
    assert row["rrf"] == pytest.approx(1 / 62 + 1 / 61)
    nine = dict(zip(names, matrix[ids.index(9)], strict=True))
    assert nine["text_bm25"] == 2.5 and nine["text_semantic"] == 0.6
    assert ids[0] == 8  # candidates in RRF order
    # One channel alone is still fused: the rrf feature is on its own scale, not raw scores.
    _, alone = candidate_features({"global": [Hit(7, 0.9)]}, ["global"])
    assert alone[0, -2] == pytest.approx(1 / 61)


def synthetic_queries(n: int, seed: int) -> list[Judged]:
    """Channel 'global' is noise; 'local' ranks the one relevant image first when it
    finds it (70% of queries). A good ranker must learn to trust 'local'."""
    rng = np.random.default_rng(seed)
    samples = []
    for q in range(n):
        images = list(range(q * 100, q * 100 + 20))
        relevant = images[int(rng.integers(20))]
        noise = sorted(images, key=lambda _: rng.random())
        glob = [Hit(i, float(1 - r / 20)) for r, i in enumerate(noise)]
        local = [Hit(relevant, 50.0, LocalEvidence(inliers=40))] if rng.random() < 0.7 else []
        local += [Hit(i, 3.0, LocalEvidence(inliers=2)) for i in noise[:3] if i != relevant]
        samples.append(Judged(rankings={"global": glob, "local": local},
                              relevant=frozenset({relevant})))
    return samples


def top1(ranker: LearnedRanker, samples: list[Judged]) -> float:
    return float(np.mean([ranker.rank(s.rankings)[0].image_id in s.relevant for s in samples]))


def test_the_ranker_learns_which_channel_to_trust(tmp_path: Path) -> None:
    ranker = train_ranker(synthetic_queries(40, seed=1))
    held_out = synthetic_queries(40, seed=2)
    assert top1(ranker, held_out) >= 0.6  # local's 70%, minus noise
    assert ranker.coef[ranker.features.index("local_inliers")] > 0
    assert isinstance(ranker.rank(held_out[0].rankings)[0].evidence, FusedEvidence)
    assert set(ranker.calibrations) == {"global", "local"}
    assert ranker.trained_on["queries"] == 40
    path = tmp_path / "ranker.json"
    ranker.save(path)
    again = LearnedRanker.load(path)
    assert again == ranker
    assert top1(again, held_out) == top1(ranker, held_out)


def test_training_needs_both_kinds_of_judgement() -> None:
    only_relevant = [Judged({"global": [Hit(1, 0.5)]}, relevant=frozenset({1}))]
    with pytest.raises(ValidationError, match="both relevant and not"):
        train_ranker(only_relevant)
    with pytest.raises(ValidationError, match="at least one"):
        train_ranker([])


def test_a_damaged_ranker_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "ranker.json"
    with pytest.raises(CollectionError, match="train one first"):
        LearnedRanker.load(path)
    path.write_text("{not json")
    with pytest.raises(CollectionError, match="not a readable ranker"):
        LearnedRanker.load(path)
    good = train_ranker(synthetic_queries(10, seed=3)).as_dict()
    for broken in ({**good, "version": 99}, {**good, "coef": good["coef"][:-1]},
                   {**good, "scale": [0.0] * len(good["scale"])},
                   {**good, "mean": ["nan"] * len(good["mean"])}, [good],
                   {**good, "calibrations": []}, {**good, "intercept": "nan"},
                   {**good, "calibrations": {"global": [1.0]}}):
        path.write_text(json.dumps(broken))
        with pytest.raises(CollectionError, match="damaged"):
            LearnedRanker.load(path)


def test_clicks_become_judgements_click_over_skip_above(tmp_path: Path) -> None:
    catalog = Catalog(tmp_path / "catalog.sqlite").open()
    rankings = {"global": [Hit(1, 0.9), Hit(2, 0.8), Hit(3, 0.7), Hit(4, 0.6)]}
    query = Feedback(catalog).log_search(rankings, shown=[1, 2, 3, 4])
    unclicked = Feedback(catalog).log_search(rankings, shown=[1, 2])
    assert Feedback(catalog).log_click(query, 3) == 3
    assert Feedback(catalog).log_click(query, 3) == 3  # a second click on it counts once
    with pytest.raises(NotFoundError, match="shown"):
        Feedback(catalog).log_click(query, 99)
    with pytest.raises(NotFoundError, match="logged search"):
        Feedback(catalog).log_click("nope", 1)
    (sample,) = Feedback(catalog).judged()
    assert sample.relevant == {3}
    assert sample.judged == {1, 2, 3}  # 4 was below the last click: maybe never seen
    assert [hit.image_id for hit in sample.rankings["global"]] == [1, 2, 3, 4]
    assert Feedback(catalog).counts() == {"searches": 2, "clicks": 1, "clicked_searches": 1}
    assert unclicked  # logged, but without clicks it judges nothing
    catalog.close()


def test_a_ranker_saved_before_evidence_named_its_features_still_ranks(tmp_path: Path) -> None:
    """Rankers saved with the fixed extra features (a faces column even without faces)
    load and rank as they did: columns are matched by name."""
    legacy = ["global_score", "global_reciprocal_rank", "global_found", "local_score",
              "local_reciprocal_rank", "local_found", "local_inliers", "faces_same_person",
              "text_bm25", "text_semantic", "rrf", "channels_found"]
    coef = [0.0] * len(legacy)
    coef[legacy.index("local_inliers")] = 1.0
    data = {"version": 1, "channels": ["global", "local"], "features": legacy,
            "mean": [0.0] * len(legacy), "scale": [1.0] * len(legacy), "coef": coef,
            "intercept": 0.0}
    for saved in (data, {key: value for key, value in data.items() if key != "features"}):
        path = tmp_path / "ranker.json"
        path.write_text(json.dumps(saved))
        ranker = LearnedRanker.load(path)
        assert list(ranker.features) == legacy
        ranked = ranker.rank({"global": [Hit(1, 0.9), Hit(2, 0.8)],
                              "local": [Hit(2, 12.0, LocalEvidence(inliers=12))]})
        assert [hit.image_id for hit in ranked] == [2, 1]
    path.write_text(json.dumps({**data, "features": ["local_score", *legacy[1:]]}))
    with pytest.raises(CollectionError, match="damaged"):
        LearnedRanker.load(path)


def test_logged_evidence_reads_back_typed(tmp_path: Path) -> None:
    catalog = Catalog(tmp_path / "catalog.sqlite").open()
    rankings = {"local": [Hit(1, 31.0, LocalEvidence(tree_score=0.1, inliers=31, verified=True,
                                                     matches=[[1.0, 2.0, 3.0, 4.0]]))],
                "text": [Hit(2, 0.03, TextEvidence(bm25=1.5, matched="cat"))]}
    query = Feedback(catalog).log_search(rankings, shown=[1, 2])
    Feedback(catalog).log_click(query, 1)
    (sample,) = Feedback(catalog).judged()
    local = sample.rankings["local"][0].evidence
    assert local == LocalEvidence(inliers=31, verified=True)  # what the ranker needs, no lines
    assert sample.rankings["text"][0].evidence.features() == {"bm25": 1.5, "semantic": 0.0}
    catalog.close()
