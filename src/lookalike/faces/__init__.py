"""Faces: detect, align and embed faces, verify pairs, and cluster faces into people."""

from lookalike.faces.align import TEMPLATES, align_face, similarity_transform
from lookalike.faces.blazeface import BlazeFaceDetector
from lookalike.faces.cluster import CLUSTERERS, cluster_faces
from lookalike.faces.detect import (
    DETECTORS,
    CenterFaceDetector,
    DetectorConfig,
    DlibHogDetector,
    Face,
    FaceDetector,
    make_detector,
)
from lookalike.faces.embed import (
    EMBEDDERS,
    FaceEmbedder,
    FaceEmbedderInfo,
    TrainedFaceEmbedder,
    distance_from_similarity,
    is_face_model_file,
    make_embedder,
    trained_face_embedder,
)
from lookalike.faces.model import (
    VERIFY_THRESHOLDS,
    FaceAnalyzer,
    FoundFace,
    NoFaceError,
    Verification,
    central_face,
    cluster_threshold,
    face_in_box,
    largest_face,
    verify_threshold,
)

# BlazeFace lives in its own module, which imports the detector contract from detect.py.
DETECTORS.add(BlazeFaceDetector.name, BlazeFaceDetector)

__all__ = [
    "CLUSTERERS",
    "DETECTORS",
    "EMBEDDERS",
    "TEMPLATES",
    "VERIFY_THRESHOLDS",
    "BlazeFaceDetector",
    "CenterFaceDetector",
    "DetectorConfig",
    "DlibHogDetector",
    "Face",
    "FaceAnalyzer",
    "FaceDetector",
    "FaceEmbedder",
    "FaceEmbedderInfo",
    "FoundFace",
    "NoFaceError",
    "TrainedFaceEmbedder",
    "Verification",
    "align_face",
    "central_face",
    "cluster_faces",
    "cluster_threshold",
    "distance_from_similarity",
    "face_in_box",
    "is_face_model_file",
    "largest_face",
    "make_detector",
    "make_embedder",
    "similarity_transform",
    "trained_face_embedder",
    "verify_threshold",
]
