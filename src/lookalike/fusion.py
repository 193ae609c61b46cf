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
ranker when the collection has one, else :func:`trusted_fusion`, reciprocal rank fusion
with the channel weights of :data:`TRUST` (chosen once on public judgements, each
benchmark held out in turn). For a query by image alone, the text channel's ranking by
the query's own ImageNet labels is left out: on UKBench56, Oxford and Fashion-MNIST it
lowered RRF every time. It joins when the user gives a text, and the learned ranker weighs
it itself.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TypeVar

from lookalike.confidence import evidence_confidence, match_confidence
from lookalike.errors import expect
from lookalike.results import Evidence, FusedEvidence, Hit

R = TypeVar("R")
RRF_K = 60
# Every channel's candidates under a fusion: a fixed depth, so that the fused order of the
# first results does not depend on how many results are asked for (up to this many).
FUSION_POOL = 100
FUSIONS = ("auto", "rrf", "weighted", "learned")
# A fused result at least this likely to be a true match (its calibrated confidence) is
# settled: more likely right than not. On the planar covers, a cover matched by 4-7
# agreeing points that RANSAC could not verify (and nothing else matched) was put below the
# look-alike covers of the other channels (BENCHMARKS.md, "Settled by confidence").
SETTLED_CONFIDENCE = 0.5
DEFAULT_FUSION = "auto"


@dataclass(frozen=True)
class Trust:
    """How much each channel's ranking counts in the untrained default fusion.

    Chosen on UKBench56, Oxford (official and Revisited medium and hard) and Fashion-MNIST
    by leave-one-benchmark-out (stop 26): four of five folds chose this point, and it was
    not below the best single channel on any held-out benchmark. With stop 27's local
    channel and stop 29's settling by confidence it is 0.005 below on Oxford's 10 crop
    queries and at or above elsewhere with three channels (BENCHMARKS.md, "Fusion that
    never loses", "Settled by confidence"). Why these values: the regions channel pools
    the same network's embedding over the whole picture, its windows and its objects, so the
    global ranking mostly repeats one of its views (half a vote) while regions is the
    strongest image clue on every benchmark (three votes); a local candidate that geometry
    did not confirm has only shared visual words for it (a quarter vote,
    :attr:`Evidence.vote`); a small RRF constant lets each ranking's first places count
    most. The faces channel, the only one that measures identity, counts as much as the
    strongest image clue (three votes): with one vote, a face query's true matches that fell
    short of "same person" were outvoted by look-alike pictures (LFW and ORL albums, "Face
    search through the default fusion" in BENCHMARKS.md; no image benchmark has a faces
    channel, so it changes none).
    """

    weights: Mapping[str, float]
    k: int
    #: The weight of a channel whose search is what the query photo is of (a portrait's
    #: face, :attr:`~lookalike.results.Evidence.query_is_subject`): that channel's order
    #: leads and the others only break its near ties. On the LFW and ORL albums, a faces
    #: weight of 3 put look-alike pictures above true matches short of "same person"; from
    #: 50 up, ``auto`` equals the faces channel alone or betters it (BENCHMARKS.md, "Face
    #: search through the default fusion").
    subject: float = 100.0

    def weight(self, channel: str) -> float:
        return float(self.weights.get(channel, 1.0))

    def weights_for(self, rankings: Mapping[str, Sequence[Hit]]) -> dict[str, float]:
        """Each ranking's weight for this query: :attr:`subject` for a channel that
        searched by what the query is of, else its usual weight."""
        return {channel: self.subject if hits and hits[0].evidence.query_is_subject
                else self.weight(channel) for channel, hits in rankings.items()}


TRUST = Trust(weights={"global": 0.5, "regions": 3.0, "faces": 3.0}, k=5)


@dataclass(frozen=True)
class AutoFusion:
    """What the default fusion, ``auto``, means; the one place that says it.

    With a trained ranker, ``learned``. Untrained, reciprocal rank fusion of the image
    channels' rankings: a ranking that only repeats the query image's own labels (the
    text channel's, ``label_channels``) is left out, because it lowered RRF on every
    benchmark (BENCHMARKS.md, "Fusion"); a text the user gives always counts.
    """

    label_channels: frozenset[str] = frozenset()

    @staticmethod
    def method(has_ranker: bool) -> str:
        return "learned" if has_ranker else "trusted"

    def uses(self, channel: str, *, has_ranker: bool, text_given: bool = False) -> bool:
        """Whether the ranking of ``channel`` counts in ``auto`` for a query by image."""
        return has_ranker or text_given or channel not in self.label_channels

    def gather(self, search: Callable[[Sequence[str]], dict[str, R]], channels: Iterable[str],
               *, has_ranker: bool, text_given: bool = False) -> dict[str, R]:
        """The rankings ``auto`` fuses, asked of ``search(left_out)`` for ``channels``: the
        label rankings are left out, unless nothing else answers (no other channel had
        anything to search by), since then they are all there is."""
        left_out = [name for name in channels
                    if not self.uses(name, has_ranker=has_ranker, text_given=text_given)]
        found = search(left_out)
        return search([]) if left_out and not found else found

    def rankings(self, rankings: Mapping[str, Sequence[Hit]], *, has_ranker: bool,
                 text_given: bool = False) -> dict[str, Sequence[Hit]]:
        """Of rankings already made, the ones ``auto`` fuses (see :meth:`gather`)."""
        return self.gather(lambda left_out: {name: hits for name, hits in rankings.items()
                                             if name not in left_out},
                           rankings, has_ranker=has_ranker, text_given=text_given)


def reciprocal_rank_fusion(rankings: Mapping[str, Sequence[Hit]], *, k: int = RRF_K,
                           weights: Mapping[str, float] | None = None,
                           votes: bool = False) -> list[Hit]:
    """One ranking from several, best first, with every channel's evidence nested; with
    ``votes``, each hit's rank counts its evidence's :attr:`~Evidence.vote` too.

    One ranking alone (and no weights) keeps its order and its own scores."""
    expect(k > 0, f"expected a positive RRF constant, got {k}")
    if len(rankings) == 1 and not weights:
        ((channel, hits),) = rankings.items()
        return nested(channel, hits)
    fused: dict[int, float] = {}
    for channel, hits in rankings.items():
        weight = 1.0 if weights is None else float(weights.get(channel, 1.0))
        for rank, hit in enumerate(hits, start=1):
            vote = hit.evidence.vote if votes else 1.0
            fused[hit.image_id] = fused.get(hit.image_id, 0.0) + weight * vote / (k + rank)
    return fused_hits(fused, rankings)


def fuses(channel: str, *, image: bool, text: bool) -> bool:
    """Whether a search fuses several rankings: every channel (``auto``), or an image and
    a text."""
    return channel == "auto" or (image and text)


def fusion_depth(k: int, *, fused: bool) -> int:
    """How deep each channel ranks for ``k`` results: the fixed pool when several rankings
    are fused, else ``k``."""
    return max(k, FUSION_POOL) if fused else k


def sure_first(hits: Sequence[Hit], rankings: Mapping[str, Sequence[Hit]]) -> list[Hit]:
    """The order fused from ``rankings`` with the settled matches first, surest first; the
    others follow in their fused order. A match is settled by evidence that alone settles it
    (a spatially verified object, the same person's face) or by a calibrated confidence
    (:func:`~lookalike.confidence.match_confidence`) of at least :data:`SETTLED_CONFIDENCE`:
    a vote of similar-looking channels does not outrank what is more likely right than not,
    and of two settled matches the one with more evidence (60 agreeing points against 25)
    comes first. One ranking alone (the others empty) keeps its own order (a channel
    already ranks its sure matches as it sees fit, and its first k do not depend on k)."""
    if sum(1 for found in rankings.values() if found) < 2:
        return list(hits)
    surety = [_surety(hit.evidence) for hit in hits]
    settled = [position for position, hit in enumerate(hits)
               if hit.evidence.sure or surety[position] >= SETTLED_CONFIDENCE]
    first = set(settled)
    settled.sort(key=lambda position: -surety[position])  # stable: ties keep the fused order
    return ([hits[position] for position in settled]
            + [hit for position, hit in enumerate(hits) if position not in first])


def _surety(evidence: Evidence) -> float:
    """How sure a match is, to order the settled ones: its calibrated confidence, where
    evidence that settles alone but has no calibration (a plug-in's) counts as certain."""
    items = evidence.channels.values() if isinstance(evidence, FusedEvidence) else (evidence,)
    return max((1.0 if item.sure and evidence_confidence(item) is None
                else match_confidence(item) for item in items), default=0.0)


def rank_fusion(rankings: Mapping[str, Sequence[Hit]]) -> list[Hit]:
    """``rrf``: reciprocal rank fusion, settled matches first."""
    return sure_first(reciprocal_rank_fusion(rankings), rankings)


def trusted_fusion(rankings: Mapping[str, Sequence[Hit]], trust: Trust = TRUST) -> list[Hit]:
    """The untrained default: reciprocal rank fusion where each hit votes with its
    channel's weight times its evidence's :attr:`~Evidence.vote`, settled matches first.
    One ranking alone keeps its order and its own scores."""
    if len(rankings) == 1:
        ((channel, hits),) = rankings.items()
        return nested(channel, hits)
    weights = trust.weights_for(rankings)
    return sure_first(reciprocal_rank_fusion(rankings, k=trust.k, weights=weights, votes=True),
                      rankings)


def nested(channel: str, hits: Sequence[Hit]) -> list[Hit]:
    """One channel's ranking as it is, its evidence nested under the channel's name like a
    fusion's, so every ranking that is shown has one shape."""
    return [Hit(hit.image_id, hit.score,
                FusedEvidence({channel: hit.score}, {channel: hit.evidence})) for hit in hits]
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
    """Hits ordered by fused score (ties by image id), each with every channel's score and
    own evidence."""
    scores: dict[int, dict[str, float]] = {}
    details: dict[int, dict[str, Evidence]] = {}
    for channel, hits in rankings.items():
        for hit in hits:
            if channel in scores.setdefault(hit.image_id, {}):
                continue  # an image listed twice keeps its best hit
            scores[hit.image_id][channel] = hit.score
            details.setdefault(hit.image_id, {})[channel] = _own(hit.evidence, channel)
    order = sorted(fused, key=lambda image_id: (-fused[image_id], image_id))
    return [Hit(image_id, fused[image_id],
                FusedEvidence(scores.get(image_id, {}), details.get(image_id, {})))
            for image_id in order]


def _own(evidence: Evidence, channel: str) -> Evidence:
    """A channel's own evidence, also when its ranking was itself a fusion's (a ranker
    applied to nested rankings)."""
    if isinstance(evidence, FusedEvidence):
        return evidence.channels.get(channel) or next(iter(evidence.channels.values()),
                                                       evidence)
    return evidence
