"""Fusing the ranked lists of several channels into one ranking.

Three ways, each taking ``{channel: [Hit, ...]}`` (best first):

* :func:`reciprocal_rank_fusion` (Cormack, Clarke & Büttcher, SIGIR 2009): each image
  scores the sum over channels of ``w / (k + rank)``, with k = 60 as in the paper. It needs
  no score calibration, which is why it is the default.
* :func:`weighted_score_fusion`: each channel's scores are first calibrated to a common
  scale (Platt scaling learned from relevance judgements, or per-query min-max when there
  are none), then summed with per-channel weights.
* a learned ranker (:mod:`lookalike.ranking`): logistic regression over per-candidate
  features (scores, ranks, inliers, text scores), trained from judgements or clicks.

The default, ``auto``, is what measured best (BENCHMARKS.md, "Fusion"): the learned
ranker when the collection has one, else reciprocal rank fusion of the image channels. For
a query by image alone, the text channel's ranking by the query's own ImageNet labels is
left out of that RRF: on UKBench56, Oxford and Fashion-MNIST it lowered RRF every time.
It joins when the user gives a text, and the learned ranker weighs it itself.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from lookalike.collection.channels import Hit
from lookalike.errors import expect

RRF_K = 60
FUSIONS = ("auto", "rrf", "weighted", "learned")
DEFAULT_FUSION = "auto"


def reciprocal_rank_fusion(rankings: Mapping[str, Sequence[Hit]], *, k: int = RRF_K,
                           weights: Mapping[str, float] | None = None) -> list[Hit]:
    """One ranking from several, best first; each hit's evidence keeps the channel scores."""
    expect(k > 0, f"expected a positive RRF constant, got {k}")
    if len(rankings) == 1 and not weights:
        return list(next(iter(rankings.values())))
    fused: dict[int, float] = {}
    for channel, hits in rankings.items():
        weight = 1.0 if weights is None else float(weights.get(channel, 1.0))
        for rank, hit in enumerate(hits, start=1):
            fused[hit.image_id] = fused.get(hit.image_id, 0.0) + weight / (k + rank)
    return fused_hits(fused, rankings)


@dataclass(frozen=True)
class Calibration:
    """Maps one channel's raw score to a probability of relevance: sigmoid(a * s + b)."""

    a: float
    b: float

    def __call__(self, score: float) -> float:
        z = self.a * score + self.b
        return 1.0 / (1.0 + math.exp(-z)) if z > -700 else 0.0

    def as_list(self) -> list[float]:
        return [self.a, self.b]


def weighted_score_fusion(
    rankings: Mapping[str, Sequence[Hit]], *,
    calibrations: Mapping[str, Calibration] | None = None,
    weights: Mapping[str, float] | None = None,
) -> list[Hit]:
    """Calibrated channel scores summed with weights; a channel without a learned
    calibration is min-max scaled within this query's list."""
    fused: dict[int, float] = {}
    for channel, hits in rankings.items():
        if not hits:
            continue
        weight = 1.0 if weights is None else float(weights.get(channel, 1.0))
        calibration = (calibrations or {}).get(channel)
        if calibration is None:
            scores = [hit.score for hit in hits]
            low, high = min(scores), max(scores)
            span = high - low
            values = [1.0 if span <= 0 else (s - low) / span for s in scores]
        else:
            values = [calibration(hit.score) for hit in hits]
        for hit, value in zip(hits, values, strict=True):
            fused[hit.image_id] = fused.get(hit.image_id, 0.0) + weight * value
    return fused_hits(fused, rankings)


def fused_hits(fused: Mapping[int, float], rankings: Mapping[str, Sequence[Hit]]) -> list[Hit]:
    """Hits ordered by fused score, each with every channel's score and own evidence."""
    scores: dict[int, dict[str, float]] = {}
    details: dict[int, dict[str, Any]] = {}
    for channel, hits in rankings.items():
        for hit in hits:
            if channel in scores.setdefault(hit.image_id, {}):
                continue  # an image listed twice keeps its best hit
            scores[hit.image_id][channel] = hit.score
            if hit.evidence:  # a channel's own evidence (inliers, a face box) is kept by name
                details.setdefault(hit.image_id, {})[channel] = hit.evidence
    order = sorted(fused, key=lambda image_id: (-fused[image_id], image_id))
    return [Hit(image_id, fused[image_id],
                {"channel_scores": scores[image_id], **details.get(image_id, {})})
            for image_id in order]
