"""What a search returns: hits, the typed evidence for each, and the ranked results.

Every channel answers with :class:`Hit` objects whose ``evidence`` is the channel's own
typed record of why the image matched (:class:`LocalEvidence`: inliers and the transform;
:class:`FaceEvidence`: the face and the person; ...). Each evidence type can say itself
as a dict (:meth:`Evidence.as_dict`, the JSON every adapter prints) and as one line a
person reads (:meth:`Evidence.reason`), and names the few numbers a learned ranker may
use (:attr:`Evidence.FEATURES`).

A ranking ready to show is always *fused*, even when one channel was searched: its hits
carry :class:`FusedEvidence`, each channel's evidence under the channel's name with the
channel scores beside them, so the CLI, the HTTP API, the page, the ranker and the click
log read one shape.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any, ClassVar, Self

from lookalike.errors import ValidationError

# Below this score a detected object is shown as weak: on the hand-checked detection set,
# the detector's labels were right 96% of the time from 0.6 up and 84% from 0.5
# (BENCHMARKS.md, "Object detector").
WEAK_LABEL_SCORE = 0.6
#: The vote of a local candidate that spatial verification did not confirm (see
#: :attr:`Evidence.vote`; chosen with :data:`lookalike.fusion.TRUST`).
UNCONFIRMED_VOTE = 0.25
#: A query face whose shorter side is at least this share of the query's (or of its box's)
#: makes the query a portrait, a search for the person (:attr:`Evidence.query_is_subject`).
#: The LFW album's photos have shares of 0.27-0.5 (median 0.39), ORL's 0.69 and more; a
#: passer-by in a street or building photo is under 0.1.
PORTRAIT_SHARE = 0.2


def closeness(similarity: float) -> float:
    """-log(1 - cosine similarity): a logistic calibration linear in the similarity itself
    levels off (a copy of the query would get 0.24), while in this it can reach 1 for a
    near copy and still fits the judged pairs (BENCHMARKS.md, "Calibrated confidence")."""
    return -math.log(max(1e-4, 1.0 - similarity))


class Evidence(ABC):
    """Why one channel matched one image. Subclasses are frozen dataclasses whose fields
    all have defaults, so a logged, partial record reads back (:meth:`from_dict`)."""

    #: The ranker's extra numbers from this evidence (see :meth:`features`).
    FEATURES: ClassVar[tuple[str, ...]] = ()
    #: The fields the click log keeps, enough to compute :meth:`features` again.
    LOGGED: ClassVar[tuple[str, ...]] = ()

    @abstractmethod
    def reason(self) -> str:
        """One line in plain words: why this image matched, by this channel."""

    def features(self) -> dict[str, float]:
        """The values of :attr:`FEATURES` for a learned ranker."""
        return {}

    def calibration_features(self) -> tuple[float, ...]:
        """The numbers this evidence's confidence is calibrated on
        (:mod:`lookalike.confidence`); empty when it has none."""
        return ()

    @property
    def sure(self) -> bool:
        """Whether this evidence alone settles the match: a spatially verified object, the
        same person's face. An untrained fusion puts such matches first."""
        return False

    @property
    def query_is_subject(self) -> bool:
        """Whether what this channel searched by is what the query photo is of (a portrait,
        for the faces channel): then the untrained default fusion lets this channel lead."""
        return False

    @property
    def vote(self) -> float:
        """How much this hit's rank counts in the untrained default fusion, against a full
        vote (1) for its channel: less for a candidate the channel checked and could not
        confirm."""
        return 1.0

    def as_dict(self) -> dict[str, Any]:
        """The fields that are set, as JSON-ready values."""
        return {item.name: getattr(self, item.name) for item in fields(self)  # type: ignore[arg-type]
                if getattr(self, item.name) is not None}

    def logged(self) -> dict[str, Any]:
        """What the click log keeps of this evidence."""
        found = self.as_dict()
        return {key: found[key] for key in self.LOGGED if key in found}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Self:
        """Evidence from :meth:`as_dict` or :meth:`logged` output; unknown keys are ignored."""
        known = {item.name for item in fields(cls)}  # type: ignore[arg-type]
        return cls(**{key: value for key, value in data.items() if key in known})


@dataclass(frozen=True)
class ScoreEvidence(Evidence):
    """Evidence of a channel that has nothing to show but its score."""

    score: float | None = None

    def reason(self) -> str:
        return "" if self.score is None else f"score {self.score:.3f}"


@dataclass(frozen=True)
class GlobalEvidence(Evidence):
    """The whole picture looks like the query: cosine similarity of the embeddings."""

    similarity: float | None = None

    def reason(self) -> str:
        return "looks similar" if self.similarity is None else (
            f"looks similar ({self.similarity:.2f})")

    def calibration_features(self) -> tuple[float, ...]:
        return () if self.similarity is None else (closeness(self.similarity),)


@dataclass(frozen=True)
class LocalEvidence(Evidence):
    """The same object: shared visual words, then keypoints that RANSAC found consistent.

    ``verified`` is None when the image was not among the candidates verified; ``matches``
    are inlier lines (query x, y, result x, y) and ``transform`` maps query pixels to
    result pixels, both only for verified images.
    """

    FEATURES: ClassVar[tuple[str, ...]] = ("inliers",)
    LOGGED: ClassVar[tuple[str, ...]] = ("inliers", "verified")

    tree_score: float | None = None
    inliers: int | None = None
    verified: bool | None = None
    expanded_score: float | None = None
    transform: list[list[float]] | None = None
    matches: list[list[float]] | None = None

    def reason(self) -> str:
        if self.verified:
            return f"{self.inliers} matching points (same object)"
        if self.verified is False:
            return "similar details, not confirmed by geometry"
        return "similar details"

    def features(self) -> dict[str, float]:
        return {"inliers": math.log1p(float(self.inliers or 0))}

    def calibration_features(self) -> tuple[float, ...]:
        # The inliers alone: whether they reached min_inliers added nothing once they were
        # counted (its fitted weight was -0.08 to -0.45, never for it).
        return (math.log1p(float(self.inliers or 0)),)

    @property
    def sure(self) -> bool:
        return bool(self.verified)

    @property
    def vote(self) -> float:
        # Shared visual words alone (RANSAC failed, or the candidate was below the verified
        # depth): on every benchmark, such candidates voting fully pushed true matches of
        # the other channels down (BENCHMARKS.md, "Fusion that never loses").
        return 1.0 if self.verified else UNCONFIRMED_VOTE


@dataclass(frozen=True)
class PersonRef:
    """A person of the collection, as evidence shows it."""

    id: int
    name: str | None = None


@dataclass(frozen=True)
class FaceEvidence(Evidence):
    """A face like the query's: which face, how similar, and whose it is."""

    FEATURES: ClassVar[tuple[str, ...]] = ("same_person",)
    LOGGED: ClassVar[tuple[str, ...]] = ("same_person",)

    face_id: int | None = None
    face_box: list[float] | None = None
    similarity: float | None = None
    distance: float | None = None
    same_person: bool = False
    threshold: float | None = None
    query_face_box: list[float] | None = None
    query_face_share: float | None = None
    person: PersonRef | None = None

    @property
    def sure(self) -> bool:
        return self.same_person

    def reason(self) -> str:
        name = self.person.name if self.person is not None else None
        if self.same_person:
            return f"same person ({name})" if name else "same person"
        similarity = "" if self.similarity is None else f" ({self.similarity:.2f})"
        return f"a similar face{similarity}, not the same person"

    def features(self) -> dict[str, float]:
        return {"same_person": float(bool(self.same_person))}

    @property
    def query_is_subject(self) -> bool:
        return (self.query_face_share or 0.0) >= PORTRAIT_SHARE

    def calibration_features(self) -> tuple[float, ...]:
        # The margin over the embedder's own threshold, as a share of the way from there to
        # a perfect match: embedders whose similarities spread differently read alike.
        if self.similarity is None or self.threshold is None or self.threshold >= 1.0:
            return ()
        return ((self.similarity - self.threshold) / (1.0 - self.threshold),)

    def as_dict(self) -> dict[str, Any]:
        found = super().as_dict()
        if self.person is not None:
            found["person"] = {"id": self.person.id, "name": self.person.name}
        return found

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Self:
        person = data.get("person")
        evidence = super().from_dict({key: value for key, value in data.items()
                                      if key != "person"})
        if isinstance(person, Mapping):
            object.__setattr__(evidence, "person", PersonRef(int(person["id"]),
                                                             person.get("name")))
        return evidence


@dataclass(frozen=True)
class RegionEvidence(Evidence):
    """A part of the image looks like the query: an object the detector named, a window
    of the picture, or the whole picture; ``region_box`` is in the result's pixels."""

    region: str | None = None  # "object", "window" or "image"
    region_box: list[float] | None = None
    label: str | None = None
    label_score: float | None = None
    similarity: float | None = None

    def reason(self) -> str:
        if self.region == "object":
            return f"similar {self.label or 'object'} in the picture"
        if self.region == "window":
            return "a similar part of the picture"
        return "looks similar as a whole"

    def calibration_features(self) -> tuple[float, ...]:
        return () if self.similarity is None else (closeness(self.similarity),)


@dataclass(frozen=True)
class TextEvidence(Evidence):
    """Words about the image match: by BM25 (``bm25``), by meaning (``semantic``, the text
    ``matched``), for an image query by its own labels (``query_labels``)."""

    FEATURES: ClassVar[tuple[str, ...]] = ("bm25", "semantic")
    LOGGED: ClassVar[tuple[str, ...]] = ("bm25", "semantic")

    bm25: float | None = None
    semantic: float | None = None
    matched: str | None = None
    matched_kind: str | None = None  # "caption", "tag", "label", "object", ...
    matched_score: float | None = None  # the model's probability, for an automatic label
    query_labels: list[str] | None = None

    def reason(self) -> str:
        if self.matched and self.matched_kind:
            if self.matched_score is None:
                return f"{self.matched_kind}: '{self.matched}'"
            if self.matched_kind == "object":
                weak = " (weak)" if self.matched_score < WEAK_LABEL_SCORE else ""
                return f"object: {self.matched}{weak}"
            # No precision was measured for ImageNet labels: the model's probability instead.
            return f"{self.matched_kind}: {self.matched} ({self.matched_score:.2f})"
        if self.matched:
            return f"text: '{self.matched}'"
        if self.bm25 is not None:
            return "the words of the text"
        return "text"

    def features(self) -> dict[str, float]:
        return {"bm25": float(self.bm25 or 0.0), "semantic": float(self.semantic or 0.0)}

    def calibration_features(self) -> tuple[float, ...]:
        # Whether the words themselves matched, or only their meaning: the one distinction
        # the judged text queries could calibrate (BENCHMARKS.md, "Calibrated confidence").
        if self.bm25 is None and self.semantic is None:
            return ()
        return (float(self.bm25 is not None),)


@dataclass(frozen=True)
class FusedEvidence(Evidence):
    """Every channel's evidence for one image, under the channel's name, and the score each
    channel gave it (``channel_scores``)."""

    channel_scores: dict[str, float] = field(default_factory=dict)
    channels: dict[str, Evidence] = field(default_factory=dict)

    @property
    def sure(self) -> bool:
        return any(evidence.sure for evidence in self.channels.values())

    def reason(self) -> str:
        reasons = [evidence.reason() or f"{name} {self.channel_scores.get(name, 0.0):.3f}"
                   for name, evidence in self.channels.items()]
        found = [name for name in self.channel_scores if name not in self.channels]
        reasons += [f"{name} {self.channel_scores[name]:.3f}" for name in found]
        return " · ".join(reasons)

    def as_dict(self) -> dict[str, Any]:
        return {"channel_scores": {name: round(score, 6)
                                   for name, score in self.channel_scores.items()},
                **{name: evidence.as_dict() for name, evidence in self.channels.items()}}

    def of(self, channel: str) -> Evidence | None:
        """The evidence of one channel, None when that channel did not find the image."""
        return self.channels.get(channel)


@dataclass(frozen=True)
class Hit:
    """One image a channel (or a fusion) found, its score, and the evidence for it."""

    image_id: int
    score: float
    evidence: Evidence = field(default_factory=ScoreEvidence)


@dataclass(frozen=True)
class SearchResult:
    """One result of a search, ready to show: its rank, path and score, and why.

    ``score`` is the calibrated confidence that the image is a true match (0-1, the same
    scale for every channel; :mod:`lookalike.confidence`), None when no channel that found
    it is calibrated (a plug-in's). ``fused_score`` is what the ranking ordered by (a
    fusion's sum of reciprocal ranks, a learned ranker's logit, or one channel's own
    score), so the confidence of a result may be below that of the next one: the order
    weighs every clue, the confidence reads the surest one. Each channel's own score is in
    ``evidence.channel_scores``."""

    rank: int
    path: str
    score: float | None
    image_id: int
    evidence: FusedEvidence = field(default_factory=FusedEvidence)
    width: int | None = None
    height: int | None = None
    fused_score: float | None = None

    @property
    def reason(self) -> str:
        return self.evidence.reason()

    @property
    def score_text(self) -> str:
        """The confidence as a person reads it: two decimals, "-" when there is none."""
        return "-" if self.score is None else f"{self.score:.2f}"

    def as_dict(self) -> dict[str, Any]:
        return {"rank": self.rank, "path": self.path, "score": _rounded(self.score),
                "fused_score": _rounded(self.fused_score), "image_id": self.image_id,
                "reason": self.reason, "evidence": self.evidence.as_dict()}


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 6)


RESERVED_NAMES = frozenset({"channel_scores"})  # keys of FusedEvidence.as_dict


def check_channel_name(name: str) -> str:
    """A channel name that can be a key of fused evidence and a ranker feature prefix."""
    if (not isinstance(name, str) or not name.isidentifier() or name in RESERVED_NAMES
            or name == "auto"):
        raise ValidationError(f"expected a channel name made of letters, digits and _ (not "
                              f"'auto' or 'channel_scores'), got {name!r}")
    return name
