"""BlazeFace: the short-range .tflite through cv2.dnn, against the points on scikit-image's
astronaut (one face near (225, 115)) and coffee (no face), and, where ``mediapipe`` is
installed, against MediaPipe's own detector. The detector is built directly, not through
the registry."""

from __future__ import annotations

import importlib.resources

import numpy as np
import pytest

pytest.importorskip("cv2")
skimage_data = pytest.importorskip("skimage.data")

from lookalike.errors import MissingDependencyError  # noqa: E402
from lookalike.faces import blazeface  # noqa: E402
from lookalike.faces.blazeface import BlazeFaceDetector  # noqa: E402
from lookalike.faces.detect import DetectorConfig  # noqa: E402

MODEL = importlib.resources.files("lookalike.faces") / "models" / blazeface.MODEL_FILE
pytestmark = pytest.mark.skipif(not MODEL.is_file(), reason=f"{blazeface.MODEL_FILE} missing")


@pytest.fixture(scope="module")
def astronaut() -> np.ndarray:
    return np.asarray(skimage_data.astronaut())


@pytest.fixture(scope="module")
def detector() -> BlazeFaceDetector:
    found = BlazeFaceDetector()
    found.load()
    return found


def test_anchors_cover_the_two_grids() -> None:
    anchors = blazeface._anchors()
    assert anchors.shape == (896, 2)
    assert np.allclose(anchors[0], [1 / 32, 1 / 32]) and np.allclose(anchors[1], anchors[0])
    assert np.allclose(anchors[512], [1 / 16, 1 / 16]) and np.allclose(anchors[-1], [15 / 16] * 2)


def test_astronaut_has_one_face_with_its_points_in_place(
        detector: BlazeFaceDetector, astronaut: np.ndarray) -> None:
    faces = detector.detect(astronaut)
    assert len(faces) == 1
    face = faces[0]
    assert face.scheme == "blazeface5" and 0.8 < face.score <= 1.0
    x0, y0, x1, y1 = face.box
    assert abs((x0 + x1) / 2 - 225) < 15 and abs((y0 + y1) / 2 - 130) < 15
    assert 80 < x1 - x0 < 110 and 80 < y1 - y0 < 110
    marks = face.landmarks
    assert marks.shape == (5, 2) and marks.dtype == np.float32
    left_eye, right_eye, nose, mouth, ears = marks
    assert np.allclose(left_eye, [201.5, 104.9], atol=2) and left_eye[0] < right_eye[0]
    assert np.allclose(right_eye, [245.8, 109.1], atol=2)
    assert left_eye[0] < nose[0] < right_eye[0] and nose[1] < mouth[1]
    # The tragion midpoint lies between the ears, near the middle of the head.
    assert np.allclose(ears, [225.2, 119.8], atol=3)


def test_coffee_has_no_face(detector: BlazeFaceDetector) -> None:
    assert detector.detect(np.asarray(skimage_data.coffee())) == []


def test_mirrored_face_keeps_image_left_eye_first(
        detector: BlazeFaceDetector, astronaut: np.ndarray) -> None:
    width = astronaut.shape[1]
    face = detector.detect(astronaut)[0]
    mirrored = detector.detect(np.ascontiguousarray(astronaut[:, ::-1]))[0].landmarks
    assert mirrored[0, 0] < mirrored[1, 0]
    # Mirroring swaps which eye is on the image left; pixel x maps to width - x. The network
    # is not exactly mirror-symmetric (about 7 px apart on this 95 px face).
    back = mirrored[[1, 0, 2, 3, 4]] * [-1, 1] + [width, 0]
    assert np.abs(back - face.landmarks).max() < 0.1 * face.size


def test_large_image_is_shrunk_and_points_scaled_back(astronaut: np.ndarray) -> None:
    cv2 = pytest.importorskip("cv2")
    large = cv2.resize(astronaut, (1024, 1024), interpolation=cv2.INTER_LINEAR)
    small = BlazeFaceDetector().detect(astronaut)[0]
    big = BlazeFaceDetector(DetectorConfig(max_side=512)).detect(large)[0]
    assert np.abs(big.landmarks / 2 - small.landmarks).max() < 2


def test_min_score_drops_weak_faces(astronaut: np.ndarray) -> None:
    assert BlazeFaceDetector(DetectorConfig(min_score=0.99)).detect(astronaut) == []


def test_missing_model_file_says_how_to_get_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(blazeface, "MODEL_FILE", "no_such_model.tflite")
    with pytest.raises(MissingDependencyError, match=r"no_such_model\.tflite"):
        BlazeFaceDetector().load()


def test_keypoints_match_mediapipe(detector: BlazeFaceDetector, astronaut: np.ndarray) -> None:
    mp = pytest.importorskip("mediapipe")
    # A non-square crop too, so the letterbox border is exercised.
    images = [astronaut, np.ascontiguousarray(astronaut[40:360, 60:460])]
    with mp.solutions.face_detection.FaceDetection(model_selection=0,
                                                   min_detection_confidence=0.5) as reference:
        for image in images:
            height, width = image.shape[:2]
            expected = reference.process(image).detections
            faces = detector.detect(image)
            assert len(faces) == len(expected) == 1
            points = np.array([[p.x * width, p.y * height]
                               for p in expected[0].location_data.relative_keypoints])
            five = np.vstack([points[:4], points[4:].mean(axis=0)])
            assert np.abs(faces[0].landmarks - five).max() < 1.0
            assert abs(faces[0].score - expected[0].score[0]) < 0.02
