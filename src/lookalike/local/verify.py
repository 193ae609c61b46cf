"""Spatial verification: do the shared visual words agree on one geometric transform?

Two images of the same object share many words whose positions map through one
affine transform (or homography); two images that share words by chance do
not. Tentative correspondences pair the features of the two images that fell
into the same leaf; RANSAC (OpenCV) finds the transform with the most inliers,
and an image is verified when at least ``min_inliers`` agree.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lookalike.errors import expect
from lookalike.local.features import import_cv2
from lookalike.local.ranges import concatenated_ranges

MODELS = ("affine", "homography")


@dataclass(frozen=True)
class VerifyConfig:
    """``threshold`` is the RANSAC reprojection error in pixels of the image as SIFT saw it."""

    model: str = "affine"
    threshold: float = 8.0
    min_inliers: int = 8
    max_per_word: int = 4  # a word seen more often on either side is too ambiguous to pair
    iterations: int = 2000
    # A real change of viewpoint neither mirrors, nor scales by more than this, nor squashes
    # one axis against the other by more than max_anisotropy; a degenerate fit does.
    max_scale_change: float = 8.0
    max_anisotropy: float = 4.0

    def __post_init__(self) -> None:
        expect(self.model in MODELS, f"expected a model among {MODELS}, got {self.model!r}")
        expect(self.threshold > 0, f"expected a positive threshold, got {self.threshold!r}")
        expect(isinstance(self.min_inliers, int) and self.min_inliers >= 3,
               f"expected min_inliers >= 3, got {self.min_inliers!r}")
        expect(isinstance(self.max_per_word, int) and self.max_per_word >= 1,
               f"expected max_per_word >= 1, got {self.max_per_word!r}")


@dataclass(frozen=True)
class Verification:
    """The outcome for one image pair. ``pairs`` are inlier (query index, match index)."""

    inliers: int
    transform: np.ndarray | None  # 2x3 (affine) or 3x3 (homography), query -> match
    pairs: np.ndarray  # (inliers, 2) int

    def verified(self, min_inliers: int) -> bool:
        return self.inliers >= min_inliers


NOT_VERIFIED = Verification(0, None, np.empty((0, 2), dtype=np.int64))


def tentative_matches(query_words: np.ndarray, match_words: np.ndarray,
                      max_per_word: int = 4) -> np.ndarray:
    """(m, 2) index pairs of features that share a word, skipping overly repeated words."""
    query_words = np.asarray(query_words)
    match_words = np.asarray(match_words)
    order = np.argsort(match_words, kind="stable")
    sorted_words = match_words[order]
    low = np.searchsorted(sorted_words, query_words, side="left")
    high = np.searchsorted(sorted_words, query_words, side="right")
    per_query = high - low
    query_repeats = _occurrences(query_words)
    usable = (per_query > 0) & (per_query <= max_per_word) & (query_repeats <= max_per_word)
    query_index = np.repeat(np.flatnonzero(usable), per_query[usable])
    starts, lengths = low[usable], per_query[usable]
    match_index = order[concatenated_ranges(starts, lengths)]
    return np.stack([query_index, match_index], axis=1).astype(np.int64)


def _occurrences(words: np.ndarray) -> np.ndarray:
    _, inverse, counts = np.unique(words, return_inverse=True, return_counts=True)
    return counts[inverse]


def estimate(query: np.ndarray, match: np.ndarray, pairs: np.ndarray,
             config: VerifyConfig) -> Verification:
    """RANSAC over the tentative ``pairs``; the transform maps query points to match points.

    ``query`` and ``match`` are keypoint rows (x, y[, size, angle in degrees]). With
    size and angle, an inlier must also agree with the transform's scale (within 2x)
    and rotation (within 30 degrees), which removes most chance agreements.
    """
    needed = 3 if config.model == "affine" else 4
    if len(pairs) < max(needed, config.min_inliers):
        return NOT_VERIFIED
    cv2 = import_cv2()
    source = np.ascontiguousarray(query[pairs[:, 0], :2], dtype=np.float32)
    target = np.ascontiguousarray(match[pairs[:, 1], :2], dtype=np.float32)
    if config.model == "affine":
        transform, mask = cv2.estimateAffine2D(
            source, target, method=cv2.RANSAC, ransacReprojThreshold=config.threshold,
            maxIters=config.iterations, confidence=0.995, refineIters=10)
    else:
        transform, mask = cv2.findHomography(source, target, cv2.RANSAC, config.threshold,
                                             maxIters=config.iterations, confidence=0.995)
    if transform is None or mask is None or not plausible(transform, config):
        return NOT_VERIFIED
    inlier = mask.ravel().astype(bool)
    if query.shape[1] >= 4 and match.shape[1] >= 4:
        inlier &= _shape_agrees(transform, query[pairs[:, 0]], match[pairs[:, 1]])
    # One query point matched to many (or many to one) is one piece of evidence, not several.
    kept = _one_to_one(pairs[inlier])
    return Verification(len(kept), transform.astype(np.float64), kept)


def _shape_agrees(transform: np.ndarray, query: np.ndarray, match: np.ndarray) -> np.ndarray:
    """Which pairs' keypoint size and orientation change the way the transform says."""
    linear = transform[:2, :2] / (transform[2, 2] if transform.shape[0] == 3 else 1.0)
    scale = np.sqrt(abs(np.linalg.det(linear)))
    rotation = np.degrees(np.arctan2(linear[1, 0], linear[0, 0]))
    ratio = match[:, 2] / np.maximum(query[:, 2], 1e-6) / max(scale, 1e-6)
    turn = (match[:, 3] - query[:, 3] - rotation + 180.0) % 360.0 - 180.0
    return np.asarray((ratio > 0.5) & (ratio < 2.0) & (np.abs(turn) <= 30.0))


def plausible(transform: np.ndarray, config: VerifyConfig) -> bool:
    """Could this transform come from seeing one object from two places?"""
    linear = transform[:2, :2] / (transform[2, 2] if transform.shape[0] == 3 else 1.0)
    if not np.all(np.isfinite(linear)) or np.linalg.det(linear) <= 0:
        return False
    largest, smallest = np.linalg.svd(linear, compute_uv=False)
    scale = float(np.sqrt(largest * smallest))
    return (1.0 / config.max_scale_change <= scale <= config.max_scale_change
            and largest / smallest <= config.max_anisotropy)


def _one_to_one(pairs: np.ndarray) -> np.ndarray:
    _, first_query = np.unique(pairs[:, 0], return_index=True)
    pairs = pairs[np.sort(first_query)]
    _, first_match = np.unique(pairs[:, 1], return_index=True)
    return pairs[np.sort(first_match)]
