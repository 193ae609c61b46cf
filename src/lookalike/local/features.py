"""Local features: SIFT keypoints and descriptors, RootSIFT by default.

RootSIFT (Arandjelović & Zisserman, CVPR 2012) L1-normalises each SIFT
descriptor and takes the element-wise square root, so that the Euclidean
distance used by k-means and the tree descent compares descriptors by the
Hellinger kernel. It costs nothing at query time and is a known gain for
retrieval. ``kind="sift"`` keeps the raw descriptors, as in Nistér & Stewénius.
"""

from __future__ import annotations

import functools
import threading
from dataclasses import dataclass

import numpy as np

from lookalike import loading
from lookalike.errors import expect

FEATURE_KINDS = ("rootsift", "sift")
DESCRIPTOR_DIM = 128


import_cv2 = functools.partial(loading.import_cv2, "the local-feature channel", "local")


@dataclass(frozen=True)
class LocalFeatures:
    """Keypoints of one image, in the pixels of the (possibly shrunk) image SIFT saw.

    ``geometry`` rows are (x, y, size, angle in degrees). ``width`` x ``height`` is
    the size SIFT saw; multiply coordinates by ``scale`` for the caller's pixels.
    """

    descriptors: np.ndarray  # (n, 128) float32
    geometry: np.ndarray  # (n, 4) float32
    width: int
    height: int
    scale: float = 1.0

    def __len__(self) -> int:
        return len(self.descriptors)

    def inside(self, box: tuple[float, float, float, float]) -> LocalFeatures:
        """Only the keypoints whose centre lies in ``box`` = (x0, y0, x1, y1), caller's pixels."""
        x, y = self.geometry[:, 0] * self.scale, self.geometry[:, 1] * self.scale
        keep = (x >= box[0]) & (x < box[2]) & (y >= box[1]) & (y < box[3])
        return LocalFeatures(self.descriptors[keep], self.geometry[keep], self.width,
                             self.height, self.scale)


def root_sift(descriptors: np.ndarray) -> np.ndarray:
    """L1-normalise, then square-root: Euclidean distance becomes the Hellinger distance."""
    descriptors = np.asarray(descriptors, dtype=np.float32)
    norms = np.abs(descriptors).sum(axis=1, keepdims=True)
    return np.asarray(np.sqrt(descriptors / np.maximum(norms, 1e-12)), dtype=np.float32)


class SiftExtractor:
    """OpenCV SIFT on the grey image, shrunk so its longer side is at most ``max_side``.

    At most ``max_features`` keypoints are kept, the strongest (by detector
    response) first.
    """

    def __init__(self, kind: str = "rootsift", max_features: int = 1500,
                 max_side: int = 1024) -> None:
        expect(kind in FEATURE_KINDS,
               f"expected a feature kind among {FEATURE_KINDS}, got {kind!r}")
        expect(isinstance(max_features, int) and max_features >= 1,
               f"expected max_features >= 1, got {max_features!r}")
        # Stored coordinates are float16, exact to a pixel up to 4096.
        expect(isinstance(max_side, int) and 32 <= max_side <= 4096,
               f"expected max_side in 32..4096, got {max_side!r}")
        self.kind = kind
        self.max_features = max_features
        self.max_side = max_side
        # OpenCV does not promise that one detector may serve two threads at once.
        self._local = threading.local()

    def load(self) -> None:
        """Import OpenCV now: a thread choice made after this covers its pool too
        (:func:`lookalike.runtime.apply_thread_limits` limits only what is loaded)."""
        import_cv2()

    def extract(self, image: np.ndarray, max_side: int | None = None) -> LocalFeatures:
        """Features of an RGB (h, w, 3) or grey (h, w) uint8 image, shrunk to ``max_side``
        when that is below the extractor's own."""
        cv2 = import_cv2()
        sift = getattr(self._local, "sift", None)
        if sift is None:
            # nfeatures=0: OpenCV's own cap can keep a few extra ties; we cut exactly below.
            sift = self._local.sift = cv2.SIFT_create()
        grey = image if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
        height, width = grey.shape[:2]
        side = self.max_side if max_side is None else min(self.max_side, max_side)
        shrink = min(1.0, side / max(height, width))
        if shrink < 1.0:
            size = (max(1, round(width * shrink)), max(1, round(height * shrink)))
            grey = cv2.resize(grey, size, interpolation=cv2.INTER_AREA)
        scale = width / grey.shape[1]
        keypoints, descriptors = sift.detectAndCompute(grey, None)
        if descriptors is None or not keypoints:
            return LocalFeatures(np.empty((0, DESCRIPTOR_DIM), np.float32),
                                 np.empty((0, 4), np.float32), grey.shape[1], grey.shape[0],
                                 scale)
        response = np.array([point.response for point in keypoints], dtype=np.float32)
        strongest = np.argsort(-response, kind="stable")[: self.max_features]
        geometry = np.array([(*keypoints[i].pt, keypoints[i].size, keypoints[i].angle)
                             for i in strongest], dtype=np.float32)
        chosen = descriptors[strongest]
        return LocalFeatures(root_sift(chosen) if self.kind == "rootsift"
                             else chosen.astype(np.float32), geometry, grey.shape[1],
                             grey.shape[0], scale)
