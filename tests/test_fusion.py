"""Reciprocal rank fusion, checked against hand-computed scores."""

from __future__ import annotations

import pytest

from lookalike.collection.channels import Hit
from lookalike.errors import ValidationError
from lookalike.fusion import reciprocal_rank_fusion


def test_rrf_matches_the_formula() -> None:
    a = [Hit(1, 0.9), Hit(2, 0.8), Hit(3, 0.1)]
    b = [Hit(3, 12.0), Hit(1, 5.0)]
    fused = reciprocal_rank_fusion({"a": a, "b": b}, k=60)
    # image 1: 1/61 + 1/62; image 3: 1/63 + 1/61; image 2: 1/62
    assert [hit.image_id for hit in fused] == [1, 3, 2]
    assert fused[0].score == pytest.approx(1 / 61 + 1 / 62)
    assert fused[1].score == pytest.approx(1 / 63 + 1 / 61)
    assert fused[1].evidence == {"channel_scores": {"a": 0.1, "b": 12.0}}


def test_a_single_channel_keeps_its_own_scores() -> None:
    hits = [Hit(5, 0.7), Hit(6, 0.2)]
    assert reciprocal_rank_fusion({"global": hits}) == hits
    with pytest.raises(ValidationError, match="positive"):
        reciprocal_rank_fusion({"global": hits}, k=0)
