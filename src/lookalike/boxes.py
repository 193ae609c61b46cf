"""Box geometry shared by the detectors (faces, objects)."""

from __future__ import annotations

import numpy as np


def nms(boxes: np.ndarray, scores: np.ndarray, iou: float,
        labels: np.ndarray | None = None) -> np.ndarray:
    """Greedy non-maximum suppression: a box suppresses the weaker boxes (of the same label,
    when ``labels`` are given) that overlap it by more than ``iou``. Indices kept, best
    score first."""
    if len(boxes) == 0:
        return np.zeros(0, dtype=np.int64)
    shifted = np.asarray(boxes, dtype=np.float64)
    if labels is not None:
        # Shift each label's boxes far apart, so boxes of different labels never overlap.
        offset = (float(shifted.max()) - float(shifted.min()) + 1.0) * labels.astype(np.float64)
        shifted = shifted + offset[:, None]
    x0, y0, x1, y1 = shifted.T
    areas = (x1 - x0) * (y1 - y0)
    order = np.argsort(-scores, kind="stable")
    kept: list[int] = []
    while order.size:
        best, rest = order[0], order[1:]
        kept.append(int(best))
        w = np.clip(np.minimum(x1[best], x1[rest]) - np.maximum(x0[best], x0[rest]), 0, None)
        h = np.clip(np.minimum(y1[best], y1[rest]) - np.maximum(y0[best], y0[rest]), 0, None)
        overlap = w * h / np.maximum(areas[best] + areas[rest] - w * h, 1e-9)
        order = rest[overlap <= iou]
    return np.array(kept, dtype=np.int64)
