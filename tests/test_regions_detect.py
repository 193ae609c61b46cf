"""Object regions: the GFL decode against boxes worked out by hand, class-aware NMS, the
config and input checks, and NanoDet on scikit-image's sample photos (the astronaut, the
motorcycle, the coffee cup), so nothing is downloaded. The model tests skip when ONNX Runtime
or the shipped ONNX file is missing."""

from __future__ import annotations

import importlib.resources
from typing import Any

import numpy as np
import pytest

from lookalike.errors import ValidationError
from lookalike.regions import (
    COCO_LABELS,
    DETECTORS,
    NanoDetDetector,
    ObjectDetectorConfig,
    Region,
    make_detector,
)
from lookalike.regions.detect import decode_gfl, nms

STRIDES = (8, 16, 32)
BINS = 11  # reg_max 10


def empty_maps() -> tuple[list[np.ndarray], list[np.ndarray]]:
    cells = [(416 // s) ** 2 for s in STRIDES]
    scores = [np.zeros((1, n, 80), dtype=np.float32) for n in cells]
    boxes = [np.zeros((1, n, 4 * BINS), dtype=np.float32) for n in cells]
    return scores, boxes


def side(*weights: float) -> np.ndarray:
    """Logits whose softmax puts ``weights`` (summing to 1) on bins 0, 1, ... and 0 elsewhere."""
    logits = np.full(BINS, -1e4, dtype=np.float32)
    for k, w in enumerate(weights):
        if w > 0:
            logits[k] = np.log(w)
    return logits


def synthetic_maps() -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Two detections, with boxes worked out by hand in the docstring of each."""
    scores, boxes = empty_maps()
    # Stride 8 (52x52 cells), row 3, column 5: centre (5.5 * 8, 3.5 * 8) = (44, 28).
    # left: all on bin 2 -> 2 * 8 = 16; top: half on bins 1 and 3 -> 2 * 8 = 16;
    # right: all on bin 10 -> 80; bottom: uniform over 0..10 -> 5 * 8 = 40.
    # Box: (44 - 16, 28 - 16, 44 + 80, 28 + 40) = (28, 12, 124, 68).
    cell = 3 * 52 + 5
    scores[0][0, cell, 41] = 0.9  # cup
    boxes[0][0, cell] = np.concatenate([side(0, 0, 1), side(0, 0.5, 0, 0.5), side(*[0] * 10, 1),
                                        np.zeros(BINS, dtype=np.float32)])
    # Stride 32 (13x13 cells), row 0, column 12: centre (12.5 * 32, 0.5 * 32) = (400, 16).
    # Every side: 1/4 on bin 0 and 3/4 on bin 1 -> 0.75 * 32 = 24.
    # Box: (376, -8, 424, 40).
    cell = 12
    scores[2][0, cell, 0] = 0.6  # person
    boxes[2][0, cell] = np.tile(side(0.25, 0.75), 4)
    return scores, boxes


def test_decode_gfl_matches_boxes_worked_out_by_hand() -> None:
    scores, boxes = synthetic_maps()
    found, found_scores, labels = decode_gfl(scores, boxes, STRIDES, 416, 10, 0.35)
    assert labels.tolist() == [41, 0]
    np.testing.assert_allclose(found_scores, [0.9, 0.6], rtol=1e-6)
    np.testing.assert_allclose(found, [[28, 12, 124, 68], [376, -8, 424, 40]], atol=1e-4)
    # Below the threshold nothing comes back, with the right shapes.
    none = decode_gfl(scores, boxes, STRIDES, 416, 10, 0.95)
    assert none[0].shape == (0, 4) and none[1].shape == (0,) and none[2].shape == (0,)


class FakeSession:
    """Stands in for ONNX Runtime: returns fixed maps in the model's output order."""

    def __init__(self, scores: list[np.ndarray], boxes: list[np.ndarray]) -> None:
        self.maps = scores + boxes
        self.seen: list[np.ndarray] = []

    def run(self, names: list[str], feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        self.seen.append(next(iter(feeds.values())))
        return self.maps


class FakeNanoDet(NanoDetDetector):
    def _load(self) -> None:
        pytest.importorskip("cv2")  # the letterbox resize; an optional extra
        self._session: Any = FakeSession(*synthetic_maps())
        self._input, self._outputs = "input_1:0", [f"out{i}" for i in range(6)]


def test_detect_maps_network_boxes_back_to_the_image_and_clips() -> None:
    detector = FakeNanoDet()
    # 832x208 letterboxes at scale 0.5 into the top 416x104 of the square.
    regions = detector.detect(np.zeros((208, 832, 3), dtype=np.uint8))
    assert [r.label for r in regions] == ["cup", "person"]
    assert regions[0].box == pytest.approx((56, 24, 248, 136), abs=1e-3)
    assert regions[1].box == pytest.approx((752, 0, 832, 80), abs=1e-3)  # clipped
    assert regions[0].label_id == 41 and regions[0].score == pytest.approx(0.9)
    tensor = detector._session.seen[0]
    assert tensor.shape == (1, 3, 416, 416) and tensor.dtype == np.float32
    # Black image, black padding: every pixel is (0 - mean) / std.
    assert tensor[0, 0, 0, 0] == pytest.approx(-103.53 / 57.375)
    assert regions[0].as_dict() == {"box": [56.0, 24.0, 248.0, 136.0], "label": "cup",
                                    "label_id": 41, "score": 0.9}


def test_detect_applies_min_score_min_side_and_max_regions() -> None:
    image = np.zeros((208, 832, 3), dtype=np.uint8)
    assert [r.label for r in FakeNanoDet(ObjectDetectorConfig(min_score=0.7)).detect(image)] \
        == ["cup"]
    assert [r.label for r in FakeNanoDet(ObjectDetectorConfig(max_regions=1)).detect(image)] \
        == ["cup"]
    # The person's clipped box is 80x80 pixels, the cup's 192x112.
    assert [r.label for r in FakeNanoDet(ObjectDetectorConfig(min_side=100)).detect(image)] \
        == ["cup"]


def test_nms_suppresses_a_duplicate_of_the_same_label_only() -> None:
    boxes = np.array([[10, 10, 110, 110], [12, 12, 112, 112], [10, 10, 110, 110],
                      [200, 200, 260, 260]], dtype=np.float64)
    scores = np.array([0.8, 0.9, 0.7, 0.5])
    labels = np.array([3, 3, 0, 3])
    # Box 1 (best) suppresses its duplicate, box 0 (IoU ~0.92); box 2 has another label.
    assert nms(boxes, scores, labels, 0.6).tolist() == [1, 2, 3]
    assert nms(boxes, scores, labels, 0.95).tolist() == [1, 0, 2, 3]
    assert nms(np.zeros((0, 4)), np.zeros(0), np.zeros(0, dtype=np.int64), 0.6).size == 0


@pytest.mark.parametrize("bad", [
    np.zeros((10, 10), dtype=np.uint8), np.zeros((10, 10, 4), dtype=np.uint8),
    np.zeros((10, 10, 3), dtype=np.float32), np.zeros((0, 10, 3), dtype=np.uint8), "image.jpg",
])
def test_detect_rejects_what_is_not_an_rgb_uint8_image(bad: Any) -> None:
    with pytest.raises(ValidationError, match="expected an HxWx3 uint8 RGB array"):
        FakeNanoDet().detect(bad)


@pytest.mark.parametrize("field, value", [
    ("min_score", 1.5), ("min_score", -0.1), ("nms_iou", 0.0), ("max_regions", 0),
    ("min_side", -1), ("max_regions", 2.5),
])
def test_config_rejects_bad_values(field: str, value: Any) -> None:
    with pytest.raises(ValidationError, match=r"^expected .*, got "):
        ObjectDetectorConfig(**{field: value})


def test_registry_and_labels() -> None:
    assert list(DETECTORS) == ["nanodet"] and DETECTORS["nanodet"] is NanoDetDetector
    assert len(COCO_LABELS) == 80 and COCO_LABELS[0] == "person" and COCO_LABELS[41] == "cup"
    assert isinstance(make_detector("nanodet"), NanoDetDetector)
    with pytest.raises(ValidationError, match="expected an object detector among"):
        make_detector("yolo")


# Real model ------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def nanodet() -> NanoDetDetector:
    pytest.importorskip("onnxruntime")
    pytest.importorskip("cv2")
    model = importlib.resources.files("lookalike.regions") / "models" / "nanodet.onnx"
    if not model.is_file():
        pytest.skip("nanodet.onnx is absent; make it with scripts/convert_nanodet.sh")
    detector = NanoDetDetector()
    assert detector.load() is detector.load()  # idempotent
    return detector


def skimage_data() -> Any:
    return pytest.importorskip("skimage.data")


def inside(image: np.ndarray, region: Region) -> bool:
    x0, y0, x1, y1 = region.box
    height, width = image.shape[:2]
    return bool(0 <= x0 < x1 <= width and 0 <= y0 < y1 <= height)


@pytest.mark.slow
def test_astronaut_is_a_person(nanodet: NanoDetDetector) -> None:
    image = skimage_data().astronaut()
    regions = nanodet.detect(image)
    assert regions and regions[0].label == "person" and regions[0].score >= 0.5
    x0, y0, x1, y1 = regions[0].box
    # She fills the left two thirds of the 512x512 photo; her centre is about (190, 260).
    assert x0 < 190 < x1 and y0 < 260 < y1
    assert (x1 - x0) * (y1 - y0) > 0.4 * 512 * 512
    assert all(inside(image, r) for r in regions)
    assert [r.score for r in regions] == sorted((r.score for r in regions), reverse=True)


@pytest.mark.slow
def test_motorcycle(nanodet: NanoDetDetector) -> None:
    image = skimage_data().stereo_motorcycle()[0]
    regions = nanodet.detect(image)
    assert regions and regions[0].label == "motorcycle" and regions[0].score >= 0.5
    assert all(inside(image, r) for r in regions)


@pytest.mark.slow
def test_coffee_cup(nanodet: NanoDetDetector) -> None:
    image = skimage_data().coffee()
    # Letterboxed, the cup scores about 0.33 (below the default 0.35), behind 'dining table'.
    detector = NanoDetDetector(ObjectDetectorConfig(min_score=0.25))
    cups = [r for r in detector.detect(image) if r.label == "cup"]
    assert cups and cups[0].score >= 0.28
    x0, y0, x1, y1 = cups[0].box
    assert x0 < 300 < x1 and y0 < 130 < y1  # the cup's rim, near the top centre
    assert all(inside(image, r) for r in detector.detect(image))


@pytest.mark.slow
def test_min_score_filters(nanodet: NanoDetDetector) -> None:
    image = skimage_data().stereo_motorcycle()[0]
    loose = NanoDetDetector(ObjectDetectorConfig(min_score=0.2)).detect(image)
    strict = NanoDetDetector(ObjectDetectorConfig(min_score=0.6)).detect(image)
    assert len(loose) > len(strict) >= 1
    assert all(r.score >= 0.6 for r in strict) and min(r.score for r in loose) >= 0.2
    assert NanoDetDetector(ObjectDetectorConfig(min_score=1.0)).detect(image) == []


@pytest.mark.slow
def test_blank_image_has_no_regions(nanodet: NanoDetDetector) -> None:
    assert nanodet.detect(np.full((300, 200, 3), 128, dtype=np.uint8)) == []
