"""The calibrated confidence of a result: one 0-1 scale whatever the channels that found it."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from lookalike.collection import Collection
from lookalike.confidence import CALIBRATIONS, Logistic, confidence, evidence_confidence
from lookalike.results import (
    FaceEvidence,
    FusedEvidence,
    GlobalEvidence,
    LocalEvidence,
    RegionEvidence,
    ScoreEvidence,
    SearchResult,
    TextEvidence,
)


def fused(**channels: object) -> FusedEvidence:
    return FusedEvidence({name: 0.0 for name in channels}, dict(channels))  # type: ignore[arg-type]


def test_a_logistic_maps_its_features_to_a_probability() -> None:
    calibration = Logistic((2.0, -1.0), 0.5)
    assert calibration((0.0, 0.0)) == pytest.approx(1 / (1 + np.exp(-0.5)))
    assert calibration((1.0, 3.0)) == pytest.approx(1 / (1 + np.exp(0.5)))
    with pytest.raises(ValueError, match="expected 2 calibration features, got 1"):
        calibration((1.0,))


def test_every_built_in_kind_of_evidence_is_calibrated() -> None:
    assert set(CALIBRATIONS) == {"GlobalEvidence", "LocalEvidence", "FaceEvidence",
                                 "RegionEvidence", "TextEvidence"}


@pytest.mark.parametrize(("weaker", "stronger"), [
    (GlobalEvidence(0.5), GlobalEvidence(0.9)),
    (RegionEvidence(region="window", similarity=0.6), RegionEvidence(region="image",
                                                                      similarity=0.95)),
    (LocalEvidence(inliers=4, verified=False), LocalEvidence(inliers=40, verified=True)),
    (FaceEvidence(similarity=0.5, threshold=0.6), FaceEvidence(similarity=0.8, threshold=0.6)),
    (TextEvidence(semantic=0.6), TextEvidence(bm25=3.0, semantic=0.6)),
])
def test_stronger_evidence_is_surer(weaker: object, stronger: object) -> None:
    low = evidence_confidence(weaker)  # type: ignore[arg-type]
    high = evidence_confidence(stronger)  # type: ignore[arg-type]
    assert low is not None and high is not None and 0.0 <= low < high <= 1.0


def test_the_shipped_calibration_reads_as_a_person_would() -> None:
    # A copy of the picture, a verified object and the same person are sure; a middling
    # likeness is not: the fitted values, checked against what they must mean.
    assert evidence_confidence(GlobalEvidence(0.9999)) == pytest.approx(1.0, abs=0.05)
    assert (evidence_confidence(LocalEvidence(inliers=30, verified=True)) or 0) > 0.9
    assert (evidence_confidence(FaceEvidence(similarity=0.75, threshold=0.6)) or 0) > 0.9
    assert (evidence_confidence(GlobalEvidence(0.5)) or 1) < 0.2
    assert (evidence_confidence(FaceEvidence(similarity=0.4, threshold=0.6)) or 1) < 0.05


def test_a_face_is_calibrated_against_its_embedders_threshold() -> None:
    # The same share of the way from each embedder's own threshold to a perfect match means
    # the same confidence, whether its similarities spread wide or narrow.
    assert evidence_confidence(FaceEvidence(similarity=0.5, threshold=0.4)) == pytest.approx(
        evidence_confidence(FaceEvidence(similarity=0.75, threshold=0.7)))
    assert evidence_confidence(FaceEvidence(similarity=0.5, threshold=0.4)) != pytest.approx(
        evidence_confidence(FaceEvidence(similarity=0.8, threshold=0.7)))
    assert evidence_confidence(FaceEvidence(similarity=0.8)) is None  # an older log


def test_a_result_is_as_sure_as_its_surest_channel() -> None:
    weak, sure = GlobalEvidence(0.6), LocalEvidence(inliers=50, verified=True)
    assert confidence(fused(global_=weak, local=sure)) == evidence_confidence(sure)
    assert confidence(fused(global_=weak)) == evidence_confidence(weak)
    assert confidence(fused(plugin=ScoreEvidence(3.0))) is None
    assert confidence(fused(plugin=ScoreEvidence(3.0), global_=weak)) == (
        evidence_confidence(weak))


def test_a_result_without_confidence_says_so() -> None:
    result = SearchResult(rank=1, path="a.jpg", score=None, image_id=1, fused_score=0.3)
    assert result.score_text == "-" and result.as_dict()["score"] is None
    assert SearchResult(rank=1, path="a.jpg", score=0.934, image_id=1).score_text == "0.93"


def test_search_results_carry_confidence_and_the_order_they_were_ranked_by(tmp_path) -> None:
    rng = np.random.default_rng(3)
    folder = tmp_path / "photos"
    folder.mkdir()
    for index in range(6):
        pixels = rng.integers(0, 255, (96, 128, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(folder / f"img{index}.png")
    with Collection(tmp_path / "c.lookalike").open() as collection:
        collection.index([folder])
        results = collection.search(folder / "img2.png", k=6)
    copy = results[0]
    assert copy.path.endswith("img2.png") and copy.score is not None and copy.score > 0.9
    assert copy.fused_score == pytest.approx(copy.evidence.channel_scores["global"])
    others = [result.score for result in results[1:]]
    assert all(score is not None and 0.0 <= score < copy.score for score in others)
    assert [result.fused_score for result in results] == sorted(
        (result.fused_score for result in results), reverse=True)
