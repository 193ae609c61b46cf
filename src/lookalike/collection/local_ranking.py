"""The local channel's ranking: score by the tree, verify the best, expand the query.

It is written once, against :class:`LocalCorpus`: the three things it asks of the
indexed images. One collection answers them from its own inverted files
(:class:`OneCorpus`); a split collection answers them across its shards
(:mod:`lookalike.collection.sharded_local`), each image's keypoints verified in the shard
that holds them. Both therefore rank alike by construction, once the shards weigh by the
statistics of the whole (:meth:`InvertedIndex.use_corpus`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from lookalike.local.features import LocalFeatures
from lookalike.local.inverted import InvertedIndex, Votes, average
from lookalike.results import Hit, LocalEvidence

if TYPE_CHECKING:
    from lookalike.collection.local_channel import LocalChannel

#: A sparse node vector, weighted and normalised: (nodes, values).
SparseVector = tuple[np.ndarray, np.ndarray]
#: What the tree scores: a vector, or a query's keypoints for Hamming embedding votes.
TreeQuery = SparseVector | Votes


@dataclass(frozen=True)
class LocalQuery:
    """A query as the local channel searches it: its keypoints, their visual words, and its
    vector, weighted with the collection's weights (and its votes, where the inverted files
    score by Hamming embedding votes)."""

    features: LocalFeatures
    words: np.ndarray
    vector: SparseVector
    #: The statistics the vector was weighed by, when a split collection's shard made it.
    corpus: int | None = None
    votes: Votes | None = None

    @property
    def first(self) -> TreeQuery:
        """What the tree scores first: the votes where there are some, else the vector."""
        return self.votes if self.votes is not None else self.vector


class LocalCorpus(Protocol):
    """What :func:`rank` asks of the indexed images."""

    def top(self, query: TreeQuery, n: int) -> list[tuple[int, float]]:
        """The ``n`` best (image id, tree score) for a weighted query vector (or a query's
        votes), best first, ties by image id; images sharing nothing left out."""
        ...

    def verify(self, query: LocalQuery, candidates: Sequence[tuple[int, float]]) -> list[Hit]:
        """One hit per candidate, in their order, its evidence saying whether RANSAC
        verified it; the score is its inliers plus the tree score."""
        ...

    def stored_vectors(self, image_ids: Sequence[int]) -> list[SparseVector]:
        """The weighted vectors of indexed images, in the order asked."""
        ...


@dataclass(frozen=True)
class RankingSettings:
    """How deep to verify (0: not at all), how many verified matches expand the query (0:
    none), and the vector norm the expanded query is normalised with."""

    verify: int
    expand: int
    norm: str

    @classmethod
    def of(cls, settings: Mapping[str, Any]) -> RankingSettings:
        """From a local channel's settings (its config, or its manifest entry)."""
        return cls(int(settings["verify"]), int(settings["expand"]), str(settings["norm"]))


def rank(corpus: LocalCorpus, query: LocalQuery, k: int, settings: RankingSettings) -> list[Hit]:
    """The ``k`` best images: verified ones first, by inliers, then the rest: by the
    expanded query's tree score when some verified, else the checked candidates by their
    inliers plus tree score, then the unchecked by tree score."""
    candidates = corpus.top(query.first, max(k, settings.verify))
    if settings.verify == 0 or not candidates:
        return [tree_hit(image_id, score) for image_id, score in candidates[:k]]
    checked = corpus.verify(query, candidates[: settings.verify])
    verified = sorted((hit for hit in checked if _passed(hit)), key=lambda hit: -hit.score)
    unverified = [hit for hit in checked if not _passed(hit)]
    if settings.expand and verified:
        best = [hit.image_id for hit in verified[: settings.expand]]
        # Average query expansion (Chum et al., ICCV 2007).
        vector = average([query.vector, *corpus.stored_vectors(best)], settings.norm)
        expanded = corpus.top(vector, k + len(verified))
        done = {hit.image_id for hit in verified}
        tried = {hit.image_id: hit.evidence for hit in unverified
                 if isinstance(hit.evidence, LocalEvidence)}
        rest = [Hit(image_id, score, replace(tried.get(image_id, LocalEvidence()),
                                             expanded_score=round(score, 6)))
                for image_id, score in expanded if image_id not in done]
    else:
        # Below the verification threshold the inliers RANSAC found still say more than the
        # tree (Philbin et al. 2007 rank by inliers alone): a checked candidate scores its
        # inliers plus the tree's score; ties keep the tree's order.
        rest = sorted(unverified, key=lambda hit: -hit.score) + [
            tree_hit(image_id, score) for image_id, score in candidates[settings.verify:]]
    return (verified + rest)[:k]


def tree_hit(image_id: int, score: float) -> Hit:
    return Hit(image_id, score, LocalEvidence(tree_score=round(score, 6)))


def _passed(hit: Hit) -> bool:
    return isinstance(hit.evidence, LocalEvidence) and bool(hit.evidence.verified)


class OneCorpus:
    """The images of one collection (or one shard): its inverted files and its keypoints.
    Use it within the inverted files' ``lock.reading()``."""

    def __init__(self, channel: LocalChannel, index: InvertedIndex) -> None:
        self.channel = channel
        self.index = index

    def top(self, query: TreeQuery, n: int) -> list[tuple[int, float]]:
        if isinstance(query, Votes):
            return self.index.top(*self.index.scores_of_votes(query), n)
        return self.index.top(*self.index.scores_of_vector(*query), n)

    def verify(self, query: LocalQuery, candidates: Sequence[tuple[int, float]]) -> list[Hit]:
        return self.channel.verify(query, candidates)

    def stored_vectors(self, image_ids: Sequence[int]) -> list[SparseVector]:
        return [self.index.stored_vector(image_id) for image_id in image_ids]
