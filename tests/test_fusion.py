"""Rank and score fusion, checked against hand-computed scores."""

from __future__ import annotations

import math

import pytest

from lookalike.confidence import evidence_confidence, match_confidence
from lookalike.errors import ValidationError
from lookalike.fusion import (
    FUSION_POOL,
    SETTLED_CONFIDENCE,
    TRUST,
    AutoFusion,
    Calibration,
    Trust,
    fusion_depth,
    reciprocal_rank_fusion,
    sure_first,
    trusted_fusion,
    weighted_score_fusion,
)
from lookalike.results import (
    PORTRAIT_SHARE,
    FaceEvidence,
    FusedEvidence,
    GlobalEvidence,
    Hit,
    LocalEvidence,
    RegionEvidence,
    ScoreEvidence,
    TextEvidence,
)


def test_rrf_matches_the_formula() -> None:
    a = [Hit(1, 0.9), Hit(2, 0.8), Hit(3, 0.1)]
    b = [Hit(3, 12.0), Hit(1, 5.0)]
    fused = reciprocal_rank_fusion({"a": a, "b": b}, k=60)
    # image 1: 1/61 + 1/62; image 3: 1/63 + 1/61; image 2: 1/62
    assert [hit.image_id for hit in fused] == [1, 3, 2]
    assert fused[0].score == pytest.approx(1 / 61 + 1 / 62)
    assert fused[1].score == pytest.approx(1 / 63 + 1 / 61)
    assert fused[1].evidence == FusedEvidence({"a": 0.1, "b": 12.0},
                                              {"a": ScoreEvidence(), "b": ScoreEvidence()})


def test_a_single_channel_keeps_its_own_scores_and_is_nested_by_channel() -> None:
    hits = [Hit(5, 0.7, GlobalEvidence(0.7)), Hit(6, 0.2, GlobalEvidence(0.2))]
    alone = reciprocal_rank_fusion({"global": hits})
    assert [(hit.image_id, hit.score) for hit in alone] == [(5, 0.7), (6, 0.2)]
    assert alone[0].evidence == FusedEvidence({"global": 0.7}, {"global": GlobalEvidence(0.7)})
    assert alone[0].evidence.as_dict() == {"channel_scores": {"global": 0.7},
                                           "global": {"similarity": 0.7}}
    with pytest.raises(ValidationError, match="positive"):
        reciprocal_rank_fusion({"global": hits}, k=0)


def test_weighted_rrf() -> None:
    a = [Hit(1, 0.9), Hit(2, 0.8)]
    b = [Hit(2, 3.0), Hit(1, 1.0)]
    fused = reciprocal_rank_fusion({"a": a, "b": b}, weights={"a": 1.0, "b": 3.0})
    assert [hit.image_id for hit in fused] == [2, 1]
    assert fused[0].score == pytest.approx(1 / 62 + 3 / 61)


def test_weighted_score_fusion_min_max_without_calibration() -> None:
    a = [Hit(1, 0.9), Hit(2, 0.5), Hit(3, 0.1)]  # scaled to 1, 0.5, 0
    b = [Hit(3, 40.0), Hit(2, 20.0)]  # scaled to 1, 0
    fused = weighted_score_fusion({"a": a, "b": b})
    scores = {hit.image_id: hit.score for hit in fused}
    assert scores == pytest.approx({1: 1.0, 2: 0.5, 3: 1.0})
    assert [hit.image_id for hit in fused] == [1, 3, 2]  # ties by image id


def test_weighted_score_fusion_with_platt_calibration_and_weights() -> None:
    a = [Hit(1, 0.9), Hit(2, 0.2)]
    b = [Hit(2, 10.0)]
    calibrations = {"a": Calibration(10.0, -5.0), "b": Calibration(0.5, -2.0)}
    fused = weighted_score_fusion({"a": a, "b": b}, calibrations=calibrations,
                                  weights={"b": 2.0})
    scores = {hit.image_id: hit.score for hit in fused}

    def sigmoid(z: float) -> float:
        return 1 / (1 + math.exp(-z))

    assert scores[1] == pytest.approx(sigmoid(4.0))
    assert scores[2] == pytest.approx(sigmoid(-3.0) + 2 * sigmoid(3.0))
    assert fused[0].image_id == 2
    assert isinstance(fused[0].evidence, FusedEvidence)
    assert fused[0].evidence.channel_scores == {"a": 0.2, "b": 10.0}


def test_fused_evidence_keeps_each_channels_own_and_says_why() -> None:
    local = LocalEvidence(tree_score=0.2, inliers=31, verified=True)
    fused = reciprocal_rank_fusion({"global": [Hit(1, 0.8, GlobalEvidence(0.8))],
                                    "local": [Hit(1, 31.2, local), Hit(2, 0.1)]})
    first = fused[0].evidence
    assert isinstance(first, FusedEvidence) and first.of("local") == local
    assert first.reason() == "looks similar (0.80) · 31 matching points (same object)"
    assert first.as_dict()["local"] == {"tree_score": 0.2, "inliers": 31, "verified": True}
    assert fused[1].evidence.reason() == "local 0.100"  # a channel with nothing but a score


def test_auto_fusion_leaves_out_label_rankings_until_trained_or_given_text() -> None:
    policy = AutoFusion(label_channels=frozenset({"text"}))
    rankings = {"global": [Hit(1, 0.9)], "text": [Hit(2, 0.1)]}
    assert list(policy.rankings(rankings, has_ranker=False)) == ["global"]
    assert list(policy.rankings(rankings, has_ranker=True)) == ["global", "text"]
    assert list(policy.rankings(rankings, has_ranker=False, text_given=True)) == ["global",
                                                                                 "text"]
    assert list(policy.rankings({"text": [Hit(2, 0.1)]}, has_ranker=False)) == ["text"]
    assert policy.method(has_ranker=True) == "learned" and policy.method(False) == "trusted"


def test_auto_fusion_asks_for_the_labels_only_when_nothing_else_answers() -> None:
    policy = AutoFusion(label_channels=frozenset({"text"}))
    asked: list[list[str]] = []

    def search(left_out: list[str], found: dict[str, list[Hit]]) -> dict[str, list[Hit]]:
        asked.append(list(left_out))
        return {name: hits for name, hits in found.items() if name not in left_out}

    labels = {"text": [Hit(2, 0.1)]}
    # A query with no face in a faces + text collection: the faces channel has nothing.
    got = policy.gather(lambda out: search(out, labels), ["faces", "text"], has_ranker=False)
    assert list(got) == ["text"] and asked == [["text"], []]
    asked.clear()
    both = {"faces": [Hit(1, 0.9)], "text": [Hit(2, 0.1)]}
    got = policy.gather(lambda out: search(out, both), ["faces", "text"], has_ranker=False)
    assert list(got) == ["faces"] and asked == [["text"]]


def test_sure_matches_come_first() -> None:
    looks = GlobalEvidence(similarity=0.9)
    verified = LocalEvidence(inliers=31, verified=True)
    rankings = {"global": [Hit(1, 0.9, looks), Hit(2, 0.8, looks), Hit(3, 0.7, looks)],
                "local": [Hit(3, 31.0, verified), Hit(4, 2.0, LocalEvidence(verified=False))]}
    fused = reciprocal_rank_fusion(rankings)
    assert [hit.image_id for hit in fused][:2] == [3, 1]  # 3 is in both lists
    rankings["local"] = [Hit(4, 31.0, verified), Hit(3, 2.0, LocalEvidence(verified=False))]
    order = [hit.image_id for hit in sure_first(reciprocal_rank_fusion(rankings), rankings)]
    assert order == [4, 3, 1, 2]  # verified 4 first, though RRF ranks it below 3, 1 and 2
    assert FusedEvidence(channels={"local": verified}).sure
    assert not FusedEvidence(channels={"global": looks}).sure


def test_settled_matches_come_surest_first_whatever_the_other_votes() -> None:
    looks = GlobalEvidence(similarity=0.9)
    # Two covers verified, the query's with 60 agreeing points, a look-alike with 25 that
    # the look-alike channels rank first: the one with more evidence leads.
    rankings = {"global": [Hit(2, 0.9, looks), Hit(1, 0.8, looks)],
                "regions": [Hit(2, 0.9, RegionEvidence(similarity=0.9)), Hit(3, 0.8)],
                "local": [Hit(1, 60.0, LocalEvidence(inliers=60, verified=True)),
                          Hit(2, 25.0, LocalEvidence(inliers=25, verified=True))]}
    assert [hit.image_id for hit in trusted_fusion(rankings)][:3] == [1, 2, 3]
    assert reciprocal_rank_fusion(rankings)[0].image_id == 2


def test_a_match_settled_by_its_evidence_stays_settled_without_a_calibration() -> None:
    # A face said to be the same person, by an embedder the calibration does not know.
    person = FaceEvidence(same_person=True)
    assert match_confidence(person) == 0.0
    near_copy = GlobalEvidence(similarity=0.999)
    looks = GlobalEvidence(similarity=0.6)
    rankings = {"global": [Hit(2, 0.999, near_copy), Hit(3, 0.6, looks), Hit(1, 0.5, looks)],
                "faces": [Hit(1, 0.9, person)]}
    # Settled by evidence whose sureness no calibration measures: first, as before there
    # was a confidence, even above a near copy (0.98).
    assert [hit.image_id for hit in trusted_fusion(rankings)] == [1, 2, 3]


def test_settled_matches_as_sure_as_each_other_keep_their_fused_order() -> None:
    verified = LocalEvidence(inliers=20, verified=True)
    rankings = {"global": [Hit(3, 0.9, GlobalEvidence(similarity=0.5)),
                           Hit(2, 0.8, GlobalEvidence(similarity=0.4))],
                "local": [Hit(2, 20.0, verified), Hit(3, 20.0, verified)]}
    assert [hit.image_id for hit in trusted_fusion(rankings)] == [
        hit.image_id for hit in reciprocal_rank_fusion(rankings, k=TRUST.k,
                                                       weights=TRUST.weights_for(rankings),
                                                       votes=True)]


def test_one_ranking_beside_empty_ones_keeps_its_order() -> None:
    found = [Hit(1, 0.4, LocalEvidence(inliers=0, verified=False)),
             Hit(2, 0.3, LocalEvidence(inliers=30, verified=True))]
    fused = reciprocal_rank_fusion({"local": found, "text": []})
    assert [hit.image_id for hit in sure_first(fused, {"local": found, "text": []})] == [1, 2]


def test_an_even_confidence_settles_a_match_that_no_check_confirmed() -> None:
    looks = GlobalEvidence(similarity=0.9)
    # 6 agreeing points, short of the 8 that verify, and nothing else near them: more
    # likely the query's object than not, so above the look-alikes' votes.
    short = LocalEvidence(inliers=6, verified=False)
    chance = LocalEvidence(inliers=2, verified=False)
    rankings = {"global": [Hit(2, 0.9, looks), Hit(3, 0.8, looks)],
                "regions": [Hit(2, 0.9, RegionEvidence(similarity=0.9)), Hit(3, 0.8)],
                "local": [Hit(1, 6.0, short), Hit(3, 2.0, chance)]}
    assert match_confidence(short) >= SETTLED_CONFIDENCE > match_confidence(chance)
    assert [hit.image_id for hit in trusted_fusion(rankings)] == [1, 2, 3]
    # A matched word only says what kind of thing an image shows: it settles nothing.
    words = {"global": rankings["global"], "regions": rankings["regions"][:1],
             "text": [Hit(3, 7.2, TextEvidence(bm25=7.2, matched="Tom Tower"))]}
    assert evidence_confidence(words["text"][0].evidence) >= SETTLED_CONFIDENCE
    assert match_confidence(words["text"][0].evidence) == 0.0
    assert [hit.image_id for hit in trusted_fusion(words)] == [2, 3]


def test_fused_rankings_are_asked_for_a_fixed_pool() -> None:
    assert fusion_depth(3, fused=True) == fusion_depth(10, fused=True) == FUSION_POOL
    assert fusion_depth(500, fused=True) == 500 and fusion_depth(3, fused=False) == 3


def test_trusted_fusion_weighs_channels_and_discounts_unconfirmed_local_candidates() -> None:
    looks = GlobalEvidence(similarity=0.9)
    unconfirmed = LocalEvidence(tree_score=0.2, verified=False)
    rankings = {"global": [Hit(1, 0.9, looks), Hit(2, 0.8, looks)],
                "regions": [Hit(2, 0.7), Hit(1, 0.6)],
                "local": [Hit(1, 0.3, unconfirmed), Hit(2, 0.2, LocalEvidence(tree_score=0.1))]}
    trust = Trust(weights={"global": 0.5, "regions": 3.0}, k=5)
    scores = {hit.image_id: hit.score for hit in trusted_fusion(rankings, trust)}
    assert scores[1] == pytest.approx(0.5 / 6 + 3.0 / 7 + 0.25 / 6)
    assert scores[2] == pytest.approx(0.5 / 7 + 3.0 / 6 + 0.25 / 7)
    # Regions' three votes outweigh global's half vote, and the unconfirmed local one.
    assert [hit.image_id for hit in trusted_fusion(rankings, trust)] == [2, 1]
    # A verified match counts fully, and comes first whatever the votes say.
    rankings["local"] = [Hit(1, 31.0, LocalEvidence(inliers=31, verified=True))]
    assert LocalEvidence(verified=True).vote == 1.0 and unconfirmed.vote == 0.25
    assert [hit.image_id for hit in trusted_fusion(rankings, trust)] == [1, 2]
    # One ranking alone keeps its own order and scores.
    alone = trusted_fusion({"local": rankings["local"]}, trust)
    assert [(hit.image_id, hit.score) for hit in alone] == [(1, 31.0)]


def test_results_keep_the_fused_order_where_settled_matches_come_first() -> None:
    from lookalike.collection.searching import results_of
    from lookalike.storage import ImageRecord

    verified = Hit(1, 9.5, LocalEvidence(tree_score=0.5, inliers=9, verified=True))
    others = [Hit(image, 0.9 - image / 100, GlobalEvidence(similarity=0.9)) for image in
              range(2, 6)]
    fused = trusted_fusion({"local": [verified], "regions": others})
    assert fused[0].image_id == 1 and fused[0].score < fused[1].score  # first, fewer votes
    records = {image: ImageRecord(image, f"/p/{image}.png", None, None, None, 10, 10,
                                  "indexed", None) for image in range(1, 6)}
    found = results_of([*fused, Hit(2, 0.0, fused[1].evidence)], records)
    assert [result.image_id for result in found] == [hit.image_id for hit in fused]
    assert [result.rank for result in found] == [1, 2, 3, 4, 5]


def face(share: float, similarity: float = 0.5) -> FaceEvidence:
    # Below "same person", so that only the weights decide the order.
    return FaceEvidence(similarity=similarity, threshold=0.9, query_face_share=share)


@pytest.mark.parametrize(("share", "first"), [(0.6, 1), (0.05, 2)])
def test_a_portrait_querys_faces_lead_the_default_fusion(share: float, first: int) -> None:
    # Faces rank image 1 first; both image channels rank image 2 first. A portrait query
    # is a search for the person, so its faces' order leads; a passer-by's face in a
    # street photo is one clue among the others.
    rankings = {"faces": [Hit(1, 0.5, face(share)), Hit(2, 0.4, face(share, 0.4))],
                "global": [Hit(2, 0.9, GlobalEvidence(0.9)), Hit(1, 0.5, GlobalEvidence(0.5))],
                "regions": [Hit(2, 0.9, ScoreEvidence(0.9)), Hit(1, 0.5, ScoreEvidence(0.5))]}
    assert trusted_fusion(rankings)[0].image_id == first
    assert TRUST.weights_for(rankings)["faces"] == (TRUST.subject if share >= PORTRAIT_SHARE
                                                    else TRUST.weight("faces"))
