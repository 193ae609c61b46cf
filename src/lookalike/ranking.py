"""A learned ranker: logistic regression over what the channels say about each candidate.

Each candidate image of a query (any image some channel returned) becomes one row of
features: per channel, its raw score, its reciprocal rank and whether it was found at all;
plus the local channel's inlier count, whether a face is the same person, the text
channel's BM25 and semantic scores, and the reciprocal-rank-fusion score. A logistic
regression learns from relevance judgements, taken from a ground-truth file or from the
clicks the web page logs, which candidates are relevant; its decision value orders them.

Training uses scikit-learn (the ``rank`` extra); the result is a small JSON file of
coefficients that ranks with numpy alone, so searching never needs scikit-learn, and no
pickle (which can run code on load) is ever read. The same training also fits a Platt
calibration per channel, for weighted score fusion.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from lookalike.errors import CollectionError, MissingDependencyError, ValidationError, expect
from lookalike.fusion import Calibration, fused_hits, reciprocal_rank_fusion
from lookalike.paths import atomic_write_bytes
from lookalike.results import Hit

RANKER_VERSION = 1
_PER_CHANNEL = ("score", "reciprocal_rank", "found")
_COMBINED = ("rrf", "channels_found")
# The extra features of rankers saved before each channel's evidence named its own.
_LEGACY_EXTRAS = ("local_inliers", "faces_same_person", "text_bm25", "text_semantic")


def feature_names(channels: Sequence[str], extras: Sequence[str] = ()) -> list[str]:
    """Per channel its score, reciprocal rank and presence; then ``extras`` (evidence
    features as ``<channel>_<feature>``); then the RRF score and how many channels found
    the candidate."""
    return ([f"{channel}_{part}" for channel in channels for part in _PER_CHANNEL]
            + list(extras) + list(_COMBINED))


def evidence_features(samples: Sequence[Mapping[str, Sequence[Hit]]],
                      channels: Sequence[str]) -> list[str]:
    """The evidence features the hits of ``channels`` offer, as ``<channel>_<feature>``,
    in channel order."""
    names: dict[str, None] = {}
    for channel in channels:
        for rankings in samples:
            for hit in rankings.get(channel, ()):
                names.update(dict.fromkeys(f"{channel}_{feature}"
                                           for feature in type(hit.evidence).FEATURES))
    return list(names)


def candidate_features(rankings: Mapping[str, Sequence[Hit]], channels: Sequence[str],
                       names: Sequence[str] | None = None) -> tuple[list[int], np.ndarray]:
    """(candidate image ids, (n, features) matrix) for one query's channel rankings, the
    columns being ``names`` (default: :func:`feature_names` with every evidence feature)."""
    names = list(names) if names is not None else feature_names(
        channels, evidence_features([rankings], channels))
    column = {name: i for i, name in enumerate(names)}
    found = {name: hits for name, hits in rankings.items() if hits}
    # Weights force real fusion: one ranking alone would pass through with its raw scores.
    fused = {hit.image_id: hit.score for hit in reciprocal_rank_fusion(
        found, weights=dict.fromkeys(found, 1.0))} if found else {}
    ids = sorted(fused, key=lambda image_id: -fused[image_id])
    row_of = {image_id: row for row, image_id in enumerate(ids)}
    matrix = np.zeros((len(ids), len(names)), dtype=np.float64)
    for channel in channels:
        seen: set[int] = set()
        for rank, hit in enumerate(rankings.get(channel, []), start=1):
            row = row_of.get(hit.image_id)
            if row is None or hit.image_id in seen:
                continue  # a repeated image keeps its best rank
            seen.add(hit.image_id)
            values = {"score": hit.score, "reciprocal_rank": 1.0 / rank, "found": 1.0,
                      **hit.evidence.features()}
            for part, value in values.items():
                if f"{channel}_{part}" in column:
                    matrix[row, column[f"{channel}_{part}"]] = value
    if "rrf" in column:
        matrix[:, column["rrf"]] = [fused[image_id] for image_id in ids]
    if "channels_found" in column:
        found_columns = [column[f"{channel}_found"] for channel in channels]
        matrix[:, column["channels_found"]] = matrix[:, found_columns].sum(axis=1)
    return ids, matrix


@dataclass(frozen=True)
class Judged:
    """One training query: what the channels returned, and which images are relevant.

    ``judged`` limits the negatives to the images someone saw (clicks); None means every
    candidate not in ``relevant`` is irrelevant (a ground-truth file)."""

    rankings: Mapping[str, Sequence[Hit]]
    relevant: frozenset[int]
    judged: frozenset[int] | None = None


@dataclass(frozen=True)
class LearnedRanker:
    """Logistic-regression coefficients over standardised candidate features."""

    channels: tuple[str, ...]
    features: tuple[str, ...]  # the columns (see feature_names), named in the file
    mean: tuple[float, ...]
    scale: tuple[float, ...]
    coef: tuple[float, ...]
    intercept: float
    calibrations: dict[str, Calibration] = field(default_factory=dict)
    trained_on: dict[str, Any] = field(default_factory=dict)

    def scores(self, features: np.ndarray) -> np.ndarray:
        standard = (features - np.asarray(self.mean)) / np.asarray(self.scale)
        return np.asarray(standard @ np.asarray(self.coef) + self.intercept)

    def rank(self, rankings: Mapping[str, Sequence[Hit]]) -> list[Hit]:
        """The candidates of ``rankings`` ordered by the learned relevance, best first."""
        ids, features = candidate_features(rankings, self.channels, self.features)
        if not ids:
            return []
        values = self.scores(features)
        return fused_hits({image_id: float(value) for image_id, value in
                               zip(ids, values, strict=True)}, rankings)

    # -- persistence ------------------------------------------------------------------------

    def as_dict(self) -> dict[str, Any]:
        return {"version": RANKER_VERSION, "model": "logistic-regression",
                "channels": list(self.channels), "features": list(self.features),
                "mean": list(self.mean), "scale": list(self.scale), "coef": list(self.coef),
                "intercept": self.intercept,
                "calibrations": {name: c.as_list() for name, c in self.calibrations.items()},
                "trained_on": self.trained_on}

    def save(self, path: Path) -> None:
        atomic_write_bytes(path, json.dumps(self.as_dict(), indent=2).encode())

    @classmethod
    def load(cls, path: Path) -> LearnedRanker:
        try:
            data = json.loads(path.read_text())
        except FileNotFoundError as error:
            raise CollectionError(f"{path}: no learned ranker; train one first (lookalike "
                                  "ranker train)") from error
        except (OSError, ValueError) as error:
            raise CollectionError(f"{path}: not a readable ranker ({error})") from error
        try:
            return cls.from_dict(data)
        except (KeyError, TypeError, ValueError, AttributeError) as error:
            raise CollectionError(f"{path}: the ranker is damaged ({error})") from error

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> LearnedRanker:
        if not isinstance(data, Mapping):
            raise ValueError(f"expected a JSON object, got {type(data).__name__}")
        if data.get("version") != RANKER_VERSION:
            raise ValueError(f"expected ranker version {RANKER_VERSION}, got "
                             f"{data.get('version')!r}")
        channels = tuple(str(name) for name in data["channels"])
        names = tuple(str(name) for name in data.get("features") or feature_names(
            channels, _LEGACY_EXTRAS))
        if names[:3 * len(channels)] != tuple(feature_names(channels))[:3 * len(channels)]:
            raise ValueError("expected the features to start with each channel's score, "
                             "reciprocal rank and presence")
        mean, scale, coef = (_finite(data[key], len(names), key)
                             for key in ("mean", "scale", "coef"))
        if any(v <= 0 for v in scale):
            raise ValueError("expected positive feature scales")
        intercept = float(data["intercept"])
        if not math.isfinite(intercept):
            raise ValueError("expected a finite intercept")
        return cls(channels=channels, features=names, mean=mean, scale=scale, coef=coef,
                   intercept=intercept, calibrations=_calibrations(data.get("calibrations", {})),
                   trained_on=dict(data.get("trained_on", {})))


def _finite(values: Sequence[Any], width: int, key: str) -> tuple[float, ...]:
    numbers = tuple(float(v) for v in values)
    if len(numbers) != width or not all(math.isfinite(v) for v in numbers):
        raise ValueError(f"expected {width} finite values in {key}")
    return numbers


def _calibrations(pairs: Any) -> dict[str, Calibration]:
    if not isinstance(pairs, Mapping):
        raise ValueError("expected calibrations as an object of [a, b] pairs")
    calibrations = {}
    for name, pair in pairs.items():
        values = [float(v) for v in pair]
        if len(values) != 2 or not all(math.isfinite(v) for v in values):
            raise ValueError(f"expected a finite [a, b] calibration for {name}")
        calibrations[str(name)] = Calibration(*values)
    return calibrations


def training_rows(samples: Sequence[Judged], channels: Sequence[str], names: Sequence[str]
                  ) -> tuple[np.ndarray, np.ndarray]:
    """Feature rows (columns ``names``) and 0/1 labels of every judged candidate of every
    query."""
    rows, labels = [], []
    for sample in samples:
        ids, features = candidate_features(sample.rankings, channels, names)
        for image_id, row in zip(ids, features, strict=True):
            if sample.judged is not None and image_id not in sample.judged:
                continue
            rows.append(row)
            labels.append(1.0 if image_id in sample.relevant else 0.0)
    return (np.array(rows, dtype=np.float64).reshape(-1, len(names)),
            np.array(labels, dtype=np.float64))


def train_ranker(samples: Sequence[Judged], *, channels: Sequence[str] | None = None,
                 regularisation: float = 1.0, source: str = "judgements") -> LearnedRanker:
    """Fit the ranker (and per-channel Platt calibrations) on judged queries."""
    expect(len(samples) >= 1, "expected at least one judged query, got none")
    # Channels in the order the rankings give them (the collection's order).
    used = tuple(channels or dict.fromkeys(name for sample in samples
                                           for name in sample.rankings))
    expect(bool(used), "expected rankings from at least one channel, got none")
    names = feature_names(used, evidence_features([s.rankings for s in samples], used))
    features, labels = training_rows(samples, used, names)
    positives = int(labels.sum())
    if positives == 0 or positives == len(labels):
        raise ValidationError(f"expected judged candidates both relevant and not, got "
                              f"{positives} relevant of {len(labels)}")
    LogisticRegression = _logistic_regression()
    mean = features.mean(axis=0)
    scale = features.std(axis=0)
    scale[scale < 1e-9] = 1.0  # a constant feature carries nothing; keep it harmless
    model = LogisticRegression(C=regularisation, max_iter=2000)
    model.fit((features - mean) / scale, labels)
    return LearnedRanker(
        channels=used, features=tuple(names), mean=tuple(mean.tolist()),
        scale=tuple(scale.tolist()),
        coef=tuple(model.coef_[0].tolist()), intercept=float(model.intercept_[0]),
        calibrations=fit_calibrations(samples, used),
        trained_on={"queries": len(samples), "candidates": len(labels),
                    "relevant": positives, "source": source})


def fit_calibrations(samples: Sequence[Judged], channels: Sequence[str]
                     ) -> dict[str, Calibration]:
    """Per channel, Platt scaling of its raw score to a probability of relevance."""
    LogisticRegression = _logistic_regression()
    calibrations = {}
    for channel in channels:
        scores, labels = [], []
        for sample in samples:
            for hit in sample.rankings.get(channel, []):
                if sample.judged is None or hit.image_id in sample.judged:
                    scores.append(hit.score)
                    labels.append(1.0 if hit.image_id in sample.relevant else 0.0)
        if len(set(labels)) < 2:
            continue  # nothing to learn from: the channel falls back to min-max
        model = LogisticRegression(C=100.0, max_iter=2000)
        model.fit(np.array(scores).reshape(-1, 1), np.array(labels))
        calibrations[channel] = Calibration(float(model.coef_[0][0]),
                                            float(model.intercept_[0]))
    return calibrations


def _logistic_regression() -> Any:
    try:
        from sklearn.linear_model import LogisticRegression
    except ImportError as error:
        raise MissingDependencyError("scikit-learn", "training a ranker", "rank") from error
    return LogisticRegression
