"""How sure a result is: one calibrated 0-1 confidence, whatever the channels that found it.

Channel scores do not compare: a cosine similarity of 0.58, 31 RANSAC inliers and a BM25
value of 7.2 are on different scales, and a fusion's own score (a sum of reciprocal ranks)
means nothing to a reader. Each kind of evidence therefore maps its own numbers
(:meth:`lookalike.results.Evidence.calibration_features`) to the probability that the image
is a true match, by a logistic calibration (Platt 1999) fitted once on public relevance
judgements and shipped here (:data:`CALIBRATIONS`). A result's confidence is that of its
surest clue: the maximum over the channels that found it, since the channels' clues are
far from independent (the global and regions channels embed with one network), so adding
them up would overstate.

The channel scores stay in the evidence; the confidence is what a person reads. The
default fusion also reads it: a result more likely a true match than not comes first
(:func:`match_confidence`, :func:`lookalike.fusion.sure_first`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from lookalike.results import Evidence, FusedEvidence


@dataclass(frozen=True)
class Logistic:
    """P(true match) = sigmoid(weights · features + bias)."""

    weights: tuple[float, ...]
    bias: float
    #: Whether it was fitted on instance-level judgements (the same object, place or
    #: person), so that its confidence may settle a match (:func:`match_confidence`).
    instance: bool = True

    def __call__(self, features: tuple[float, ...]) -> float:
        if len(features) != len(self.weights):
            raise ValueError(f"expected {len(self.weights)} calibration features, got "
                             f"{len(features)}")
        z = self.bias + sum(w * x for w, x in zip(self.weights, features, strict=True))
        return 1.0 / (1.0 + math.exp(-z)) if z > -700 else 0.0


# Fitted by benchmarks/bench_confidence.py with the default models, each benchmark weighted
# equally: a true match is the same object, place or person (UKBench56, Revisited Oxford
# medium, an LFW album and an ORL album); text on Fashion-MNIST's class-name queries over
# automatic labels, its only judged text queries (BENCHMARKS.md, "Calibrated confidence").
CALIBRATIONS: Mapping[str, Logistic] = {
    "FaceEvidence": Logistic((30.886,), -3.9176),
    "GlobalEvidence": Logistic((1.1499,), -4.0464),
    "LocalEvidence": Logistic((2.4846,), -3.8516),
    "RegionEvidence": Logistic((1.3908,), -4.1831),
    # Fitted on judgements by category, not instance: a matched word says what kind of thing
    # the image shows, not that it is the one the query shows.
    "TextEvidence": Logistic((1.6323,), -1.1869, instance=False),
}


def evidence_confidence(evidence: Evidence,
                        calibrations: Mapping[str, Logistic] = CALIBRATIONS) -> float | None:
    """The probability that one channel's evidence shows a true match; None when this kind
    of evidence has no calibration (a channel added by a plug-in) or lacks its numbers."""
    calibration = calibrations.get(type(evidence).__name__)
    features = evidence.calibration_features()
    if calibration is None or not features:
        return None
    return calibration(features)


def confidence(evidence: FusedEvidence,
               calibrations: Mapping[str, Logistic] = CALIBRATIONS) -> float | None:
    """A result's confidence: that of its surest channel; None when none is calibrated."""
    found = [evidence_confidence(item, calibrations) for item in evidence.channels.values()]
    return max((value for value in found if value is not None), default=None)


def match_confidence(evidence: Evidence,
                     calibrations: Mapping[str, Logistic] = CALIBRATIONS) -> float:
    """The confidence that the image shows the query's object, place or person: that of its
    surest channel among those calibrated on such judgements (0 when none is)."""
    items = (evidence.channels.values() if isinstance(evidence, FusedEvidence)
             else (evidence,))
    found = [evidence_confidence(item, calibrations) for item in items
             if (calibration := calibrations.get(type(item).__name__)) is not None
             and calibration.instance]
    return max((value for value in found if value is not None), default=0.0)
