"""BlazeFace: MediaPipe's short-range face detector, run by OpenCV's DNN module.

The model (``models/face_detection_short_range.tflite``, Apache-2.0, see
``models/NOTICE``) is a 128x128 single-shot detector with 896 fixed anchors. It
is fast (a few ms per image) and made for faces that fill much of the frame: in
a large photo a face shrinks by 128/max(H, W) before the network sees it, so
small faces are missed.

Pre- and post-processing follow MediaPipe's ``face_detection_short_range`` graph
(letterbox by an affine warp, anchor decoding, weighted NMS), so boxes and
keypoints agree with ``mediapipe`` to within a pixel. Landmarks (scheme
``blazeface5``): the eye on the image left and the one on the image right (of an
upright frontal face), the nose tip, the mouth centre, and the midpoint of the
two ear tragions.
"""

from __future__ import annotations

import importlib.resources
from typing import Any

import numpy as np

from lookalike.errors import MissingDependencyError
from lookalike.faces.detect import Face, FaceDetector, _import_cv2

MODEL_FILE = "face_detection_short_range.tflite"
INPUT_SIZE = 128


def _anchors() -> np.ndarray:
    """The (896, 2) anchor centres in [0, 1]: 16x16 cells with 2 anchors each (stride 8),
    then 8x8 cells with 6 each (three stride-16 layers of 2, which share their centres)."""
    centres = []
    for cells, per_cell in ((16, 2), (8, 6)):
        grid = (np.arange(cells, dtype=np.float32) + 0.5) / cells
        xs, ys = np.meshgrid(grid, grid)  # row-major, as the network lays out its outputs
        centres.append(np.repeat(np.stack([xs.ravel(), ys.ravel()], axis=1), per_cell, axis=0))
    return np.concatenate(centres)


def _weighted_nms(boxes: np.ndarray, points: np.ndarray, scores: np.ndarray,
                  iou: float) -> list[tuple[np.ndarray, np.ndarray, float]]:
    """MediaPipe's weighted NMS: each group of boxes overlapping the best remaining one is
    merged into their score-weighted mean box and keypoints, with the group's best score.
    Averaging steadies the keypoints, which plain NMS would take from one anchor."""
    order = np.argsort(-scores, kind="stable")
    areas = np.prod(boxes[:, 2:] - boxes[:, :2], axis=1)
    merged = []
    while order.size:
        best = order[0]
        side = np.clip(np.minimum(boxes[best, 2:], boxes[order, 2:])
                       - np.maximum(boxes[best, :2], boxes[order, :2]), 0, None)
        inter = np.prod(side, axis=1)
        overlap = inter / np.maximum(areas[best] + areas[order] - inter, 1e-12)
        group = order[overlap > iou]
        if group.size == 0:  # a degenerate best box overlaps nothing, not even itself
            group = order[:1]
        weights = scores[group] / scores[group].sum()
        merged.append((weights @ boxes[group], np.tensordot(weights, points[group], axes=1),
                       float(scores[best])))
        order = order[~np.isin(order, group)]
    return merged


class BlazeFaceDetector(FaceDetector):
    """BlazeFace short range (Bazarevsky et al. 2019) through ``cv2.dnn``."""

    name = "blazeface"
    scheme = "blazeface5"
    nms_iou = 0.3
    # MediaPipe clips the logits before the sigmoid so extreme values cannot overflow.
    logit_clip = 100.0

    def _load(self) -> None:
        cv2 = _import_cv2()
        resource = importlib.resources.files("lookalike.faces") / "models" / MODEL_FILE
        if not resource.is_file():
            raise MissingDependencyError(
                f"lookalike with its model file {MODEL_FILE}", "the BlazeFace face detector",
                "faces", command=f"pip install --force-reinstall lookalike, or copy {MODEL_FILE} "
                "from the mediapipe wheel (mediapipe/modules/face_detection/) into "
                f"{importlib.resources.files('lookalike.faces') / 'models'}")
        # OpenCV 5.0's new engine drops the 'classificators' output; the classic one keeps
        # both. Older and newer versions have no such switch and give both by default.
        engine = getattr(cv2.dnn, "ENGINE_CLASSIC", None)
        with importlib.resources.as_file(resource) as path:
            # A path, not the bytes: the buffer overload ignores ``engine`` on OpenCV 5.0.
            self._net: Any = (cv2.dnn.readNetFromTFLite(str(path)) if engine is None
                              else cv2.dnn.readNetFromTFLite(str(path), engine=engine))
        self._anchors = _anchors()

    def _detect(self, image: np.ndarray) -> list[Face]:
        cv2 = _import_cv2()
        height, width = image.shape[:2]
        # Letterbox into a centred square with a black border, by the same affine map
        # MediaPipe uses: a plain resize + pad moves the keypoints by up to ~4 px.
        scale = INPUT_SIZE / max(height, width)
        pad = np.array([(max(height, width) - width) / 2 * scale,
                        (max(height, width) - height) / 2 * scale])
        matrix = np.array([[scale, 0.0, pad[0]], [0.0, scale, pad[1]]], dtype=np.float32)
        square = cv2.warpAffine(image, matrix, (INPUT_SIZE, INPUT_SIZE), flags=cv2.INTER_LINEAR,
                                borderMode=cv2.BORDER_CONSTANT, borderValue=(0, 0, 0))
        blob = (square.astype(np.float32) / 127.5 - 1.0).transpose(2, 0, 1)[None]
        self._net.setInput(np.ascontiguousarray(blob))
        logits, regressors = self._net.forward(["classificators", "regressors"])
        clipped = np.clip(logits[0, :, 0].astype(np.float64), -self.logit_clip, self.logit_clip)
        scores = 1.0 / (1.0 + np.exp(-clipped))
        # MediaPipe thresholds before NMS, so weak anchors never pull the merged keypoints.
        keep = np.flatnonzero(scores >= self.config.min_score)
        if keep.size == 0:
            return []
        raw = regressors[0, keep].astype(np.float64) / INPUT_SIZE
        anchors = self._anchors[keep]
        centre, size = raw[:, :2] + anchors, raw[:, 2:4]
        boxes = np.hstack([centre - size / 2, centre + size / 2])
        points = raw[:, 4:].reshape(-1, 6, 2) + anchors[:, None, :]
        faces = []
        for box, marks, score in _weighted_nms(boxes, points, scores[keep], self.nms_iou):
            # Back from the letterboxed square to the image's pixels.
            corners = (box.reshape(2, 2) * INPUT_SIZE - pad) / scale
            marks = (marks * INPUT_SIZE - pad) / scale
            x0, y0 = np.maximum(corners[0], 0.0)
            x1, y1 = np.minimum(corners[1], [width, height])
            five = np.vstack([marks[:4], marks[4:].mean(axis=0)]).astype(np.float32)
            faces.append(Face(box=(float(x0), float(y0), float(x1), float(y1)),
                              landmarks=five, score=score, scheme=self.scheme))
        return faces
