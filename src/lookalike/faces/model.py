"""The face pipeline: detect, align, embed; and pair verification with a calibrated threshold."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from lookalike.errors import NothingToSearchError, ValidationError, expect
from lookalike.faces.align import align_face
from lookalike.faces.detect import DetectorConfig, Face, FaceDetector, make_detector
from lookalike.faces.embed import (
    FaceEmbedder,
    TrainedFaceEmbedder,
    distance_from_similarity,
    is_face_model_file,
    make_embedder,
    trained_face_embedder,
)
from lookalike.images import load_image

# Cosine similarity above which two faces are the same person, for each detector and
# embedder pair: the accuracy-maximising threshold on LFW View 1 training pairs
# (pairsDevTrain.txt), measured by `benchmarks/bench_faces.py calibrate`; the figures
# are in benchmarks/results/faces_calibration.json and BENCHMARKS.md.
VERIFY_THRESHOLDS: dict[tuple[str, str], float] = {
    ("centerface", "dlib-resnet"): 0.9128,
    ("dlib-hog", "dlib-resnet"): 0.9057,
    ("blazeface", "dlib-resnet"): 0.9073,
    ("centerface", "sface"): 0.3563,
    ("dlib-hog", "sface"): 0.3189,
    ("blazeface", "sface"): 0.3358,
    ("centerface", "w600k-mbf"): 0.2396,
    ("dlib-hog", "w600k-mbf"): 0.238,
    ("blazeface", "w600k-mbf"): 0.2202,
}
SFACE_CLUSTER = 0.556  # CenterFace + SFace; see CLUSTER_MARGINS


# Clustering chains faces through their neighbours, so it needs a stricter threshold than
# verifying one pair: a margin per embedder, above each detector's verification threshold.
# Chosen for CenterFace on half of the LFW identities (pairwise F of Chinese whispers) and
# reported on the other half by `benchmarks/bench_faces.py cluster`
# (benchmarks/results/faces_clustering.json); the other detectors keep their embedder's
# margin. SFace's similarities spread wider than dlib's (on LFW, a median of 0.70 for
# same-person pairs and 0.09 for others), hence its wider margin: dlib's (0.032) clusters
# SFace's faces with F 0.980 and 30 merged people on the test half, 0.200 with F 0.988 and
# one merge.
CLUSTER_MARGINS: dict[str, float] = {
    "dlib-resnet": 0.945 - VERIFY_THRESHOLDS[("centerface", "dlib-resnet")],
    "sface": SFACE_CLUSTER - VERIFY_THRESHOLDS[("centerface", "sface")],
    # Chosen on 200 LFW identities with two images or more (the even ones of the first 400),
    # reported on the other 200 (benchmarks/results/faces_clustering_w600k.json).
    "w600k-mbf": 0.265 - VERIFY_THRESHOLDS[("centerface", "w600k-mbf")],
}


def verify_threshold(detector: str, embedder: str) -> float:
    """The calibrated same-person cosine similarity of a detector and embedder; a trained
    face model (a ``.onnx`` file) brings its own, calibrated when it was trained."""
    if is_face_model_file(embedder):
        return _trained_thresholds(embedder)[0]
    return VERIFY_THRESHOLDS[(detector, embedder)]


def cluster_threshold(detector: str, embedder: str) -> float:
    """The same-person cosine similarity for grouping faces into people."""
    if is_face_model_file(embedder):
        return _trained_thresholds(embedder)[1]
    return round(VERIFY_THRESHOLDS[(detector, embedder)] + CLUSTER_MARGINS[embedder], 4)


@functools.lru_cache(maxsize=32)
def _trained_thresholds(path: str) -> tuple[float, float]:
    """Read once per file: a collection pins the file's contents (its checksum)."""
    return trained_face_embedder(path).thresholds


class NoFaceError(NothingToSearchError):
    """An image in which a face was needed has none that the detector accepts."""


@dataclass(frozen=True)
class FoundFace:
    """A detected face and its identity vector (unit length)."""

    face: Face
    vector: np.ndarray


@dataclass(frozen=True)
class Verification:
    same: bool
    similarity: float
    distance: float
    threshold: float
    faces: tuple[Face, Face]

    def as_dict(self) -> dict[str, Any]:
        return {"same": self.same, "similarity": round(self.similarity, 6),
                "distance": round(self.distance, 6), "threshold": self.threshold,
                "faces": [face.as_dict() for face in self.faces]}


class FaceAnalyzer:
    """Detector + aligner + embedder. ``load`` is explicit; every method loads on demand."""

    def __init__(self, detector: str = "centerface", embedder: str = "sface",
                 config: DetectorConfig | None = None) -> None:
        self.detector: FaceDetector = make_detector(detector, config)
        self.embedder: FaceEmbedder = make_embedder(embedder)

    def load(self) -> FaceAnalyzer:
        self.detector.load()
        self.embedder.load()
        return self

    @property
    def threshold(self) -> float:
        """The calibrated same-person cosine similarity for this detector and embedder."""
        if isinstance(self.embedder, TrainedFaceEmbedder):
            return self.embedder.thresholds[0]
        return VERIFY_THRESHOLDS[(self.detector.name, self.embedder.info.name)]

    def detect(self, image: np.ndarray) -> list[Face]:
        return self.detector.detect(image)

    def faces(self, image: np.ndarray) -> list[FoundFace]:
        """Every accepted face in ``image`` with its vector, best detection score first."""
        return self.faces_batch([image])[0]

    def faces_batch(self, images: list[np.ndarray]) -> list[list[FoundFace]]:
        """Faces of several images; all chips go to the embedder in one batch."""
        detected = [self.detector.detect(image) for image in images]
        info = self.embedder.info
        chips = [align_face(image, face, info.frame)
                 for image, faces in zip(images, detected, strict=True) for face in faces]
        vectors = self.embedder.embed(chips)
        found: list[list[FoundFace]] = []
        position = 0
        for faces in detected:
            found.append([FoundFace(face, vectors[position + i]) for i, face in enumerate(faces)])
            position += len(faces)
        return found

    def verify(self, first: np.ndarray | str | Path, second: np.ndarray | str | Path,
               threshold: float | None = None) -> Verification:
        """Are the largest faces of two images (pixels or image files) the same person?"""
        chosen = []
        for which, image in (("first", first), ("second", second)):
            faces = self.faces(_pixels(image))
            if not faces:
                raise NoFaceError(f"the {which} image: no face found (detector "
                                  f"{self.detector.name}, min score "
                                  f"{self.detector.config.min_score})")
            chosen.append(faces[largest_face([f.face for f in faces])])
        limit = self.threshold if threshold is None else threshold
        expect(-1.0 <= limit <= 1.0, f"expected a similarity threshold in [-1, 1], got {limit!r}")
        similarity = float(chosen[0].vector @ chosen[1].vector)
        return Verification(same=similarity >= limit, similarity=similarity,
                            distance=float(distance_from_similarity(similarity)),
                            threshold=limit, faces=(chosen[0].face, chosen[1].face))


def _pixels(image: np.ndarray | str | Path) -> np.ndarray:
    """An image's pixels: as given, or read from its file."""
    if isinstance(image, np.ndarray):
        return image
    if isinstance(image, str | Path):
        return load_image(image)
    raise ValidationError(f"expected an image (pixels or a file path), got "
                          f"{type(image).__name__}")


def largest_face(faces: list[Face]) -> int:
    """Index of the face with the largest box."""
    expect(bool(faces), "expected at least one face, got none")
    return int(np.argmax([(f.box[2] - f.box[0]) * (f.box[3] - f.box[1]) for f in faces]))


def central_face(faces: list[Face], width: int, height: int) -> int:
    """Index of the face whose box centre is nearest the image centre (LFW's convention:
    the labelled person is the one in the middle)."""
    expect(bool(faces), "expected at least one face, got none")
    centres = np.array([((f.box[0] + f.box[2]) / 2, (f.box[1] + f.box[3]) / 2) for f in faces])
    return int(np.argmin(np.sum((centres - [width / 2, height / 2]) ** 2, axis=1)))


def face_in_box(faces: list[Face], box: tuple[float, float, float, float]) -> int | None:
    """Index of the face that lies most inside ``box`` (at least half of it), or None."""
    best, best_share = None, 0.5
    for i, face in enumerate(faces):
        x0, y0, x1, y1 = face.box
        w = max(0.0, min(x1, box[2]) - max(x0, box[0]))
        h = max(0.0, min(y1, box[3]) - max(y0, box[1]))
        share = w * h / max((x1 - x0) * (y1 - y0), 1e-9)
        if share >= best_share:
            best, best_share = i, share
    return best
