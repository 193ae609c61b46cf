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

from lookalike.collection.channels import Hit
from lookalike.errors import CollectionError, MissingDependencyError, ValidationError, expect
from lookalike.fusion import Calibration, fused_hits, reciprocal_rank_fusion
from lookalike.paths import atomic_write_bytes

RANKER_VERSION = 1
CHANNELS = ("global", "local", "faces", "regions", "text")
_EXTRAS = ("local_inliers", "faces_same_person", "text_bm25", "text_semantic", "rrf",
           "channels_found")


def feature_names(channels: Sequence[str]) -> list[str]:
    return [f"{channel}_{part}" for channel in channels
            for part in ("score", "reciprocal_rank", "found")] + list(_EXTRAS)


def candidate_features(rankings: Mapping[str, Sequence[Hit]],
                       channels: Sequence[str]) -> tuple[list[int], np.ndarray]:
    """(candidate image ids, (n, features) matrix) for one query's channel rankings."""
    found = {name: hits for name, hits in rankings.items() if hits}
    # Weights force real fusion: one ranking alone would pass through with its raw scores.
    fused = {hit.image_id: hit.score for hit in reciprocal_rank_fusion(
        found, weights=dict.fromkeys(found, 1.0))} if found else {}
    ids = sorted(fused, key=lambda image_id: -fused[image_id])
    row_of = {image_id: row for row, image_id in enumerate(ids)}
    width = 3 * len(channels)
    matrix = np.zeros((len(ids), width + len(_EXTRAS)), dtype=np.float64)
    for position, channel in enumerate(channels):
        for rank, hit in enumerate(rankings.get(channel, []), start=1):
            row = row_of.get(hit.image_id)
            if row is None or matrix[row, 3 * position + 2]:
                continue  # a repeated image keeps its best rank
            matrix[row, 3 * position:3 * position + 3] = (hit.score, 1.0 / rank, 1.0)
            _extras(matrix[row, width:], channel, hit.evidence)
    matrix[:, width + 4] = [fused[image_id] for image_id in ids]
    matrix[:, width + 5] = matrix[:, 2:width:3].sum(axis=1)
    return ids, matrix


def _extras(row: np.ndarray, channel: str, evidence: Mapping[str, Any]) -> None:
    if channel == "local":
        row[0] = math.log1p(float(evidence.get("inliers", 0) or 0))
    elif channel == "faces":
        row[1] = float(bool(evidence.get("same_person")))
    elif channel == "text":
        row[2] = float(evidence.get("bm25", 0.0) or 0.0)
        row[3] = float(evidence.get("semantic", 0.0) or 0.0)


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
        ids, features = candidate_features(rankings, self.channels)
        if not ids:
            return []
        values = self.scores(features)
        return fused_hits({image_id: float(value) for image_id, value in
                               zip(ids, values, strict=True)}, rankings)

    # -- persistence ------------------------------------------------------------------------

    def as_dict(self) -> dict[str, Any]:
        return {"version": RANKER_VERSION, "model": "logistic-regression",
                "channels": list(self.channels), "features": feature_names(self.channels),
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
        width = len(feature_names(channels))
        vectors = [tuple(float(v) for v in data[key]) for key in ("mean", "scale", "coef")]
        if any(len(vector) != width for vector in vectors) or not all(
                math.isfinite(v) for vector in vectors for v in vector):
            raise ValueError(f"expected {width} finite values per vector")
        if any(v <= 0 for v in vectors[1]):
            raise ValueError("expected positive feature scales")
        pairs = data.get("calibrations", {})
        if not isinstance(pairs, Mapping):
            raise ValueError("expected calibrations as an object of [a, b] pairs")
        calibrations = {}
        for name, pair in pairs.items():
            values = [float(v) for v in pair]
            if len(values) != 2 or not all(math.isfinite(v) for v in values):
                raise ValueError(f"expected a finite [a, b] calibration for {name}")
            calibrations[str(name)] = Calibration(*values)
        intercept = float(data["intercept"])
        if not math.isfinite(intercept):
            raise ValueError("expected a finite intercept")
        return cls(channels=channels, mean=vectors[0], scale=vectors[1], coef=vectors[2],
                   intercept=intercept, calibrations=calibrations,
                   trained_on=dict(data.get("trained_on", {})))


def training_rows(samples: Sequence[Judged], channels: Sequence[str]
                  ) -> tuple[np.ndarray, np.ndarray]:
    """Feature rows and 0/1 labels of every judged candidate of every query."""
    rows, labels = [], []
    for sample in samples:
        ids, features = candidate_features(sample.rankings, channels)
        for image_id, row in zip(ids, features, strict=True):
            if sample.judged is not None and image_id not in sample.judged:
                continue
            rows.append(row)
            labels.append(1.0 if image_id in sample.relevant else 0.0)
    width = len(feature_names(channels))
    return (np.array(rows, dtype=np.float64).reshape(-1, width),
            np.array(labels, dtype=np.float64))


def train_ranker(samples: Sequence[Judged], *, channels: Sequence[str] | None = None,
                 regularisation: float = 1.0, source: str = "judgements") -> LearnedRanker:
    """Fit the ranker (and per-channel Platt calibrations) on judged queries."""
    expect(len(samples) >= 1, "expected at least one judged query, got none")
    used = tuple(channels or sorted({name for sample in samples for name in sample.rankings
                                     if name in CHANNELS},
                                    key=CHANNELS.index))
    expect(bool(used), f"expected rankings from channels among {list(CHANNELS)}, got none")
    features, labels = training_rows(samples, used)
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
        channels=used, mean=tuple(mean.tolist()), scale=tuple(scale.tolist()),
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
