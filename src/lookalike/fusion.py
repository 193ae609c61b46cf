"""Fusing the ranked lists of several channels into one ranking.

Reciprocal rank fusion (Cormack, Clarke & Büttcher, SIGIR 2009): each image
scores the sum over channels of 1 / (k + rank), with k = 60 as in the paper. It
needs no score calibration, which is why it is the default when a collection's
channels score on different scales.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from lookalike.collection.channels import Hit
from lookalike.errors import expect

RRF_K = 60


def reciprocal_rank_fusion(rankings: Mapping[str, Sequence[Hit]], *, k: int = RRF_K) -> list[Hit]:
    """One ranking from several, best first; each hit's evidence keeps the channel scores."""
    expect(k > 0, f"expected a positive RRF constant, got {k}")
    if len(rankings) == 1:
        return list(next(iter(rankings.values())))
    fused: dict[int, float] = {}
    scores: dict[int, dict[str, float]] = {}
    details: dict[int, dict[str, Any]] = {}
    for channel, hits in rankings.items():
        for rank, hit in enumerate(hits, start=1):
            fused[hit.image_id] = fused.get(hit.image_id, 0.0) + 1.0 / (k + rank)
            scores.setdefault(hit.image_id, {})[channel] = hit.score
            if hit.evidence:  # a channel's own evidence (inliers, a face box) is kept by name
                details.setdefault(hit.image_id, {})[channel] = hit.evidence
    order = sorted(fused, key=lambda image_id: -fused[image_id])
    return [Hit(image_id, fused[image_id],
                {"channel_scores": scores[image_id], **details.get(image_id, {})})
            for image_id in order]
