"""The last convolutional feature map of an ImageNet network, and pooling regions from it.

One pass of the network over the whole image gives a (channels, h, w) map; a vector for
any box of the image is then a pooling of the map's cells under the box (R-MAC, Tolias,
Sicre & Jégou, ICLR 2016), instead of one more pass of the network per region. Pooling is
generalised mean (GeM, Radenović, Tolias & Chum, TPAMI 2018) with p = 3, between average
(p = 1) and max pooling (p -> infinity), or plain max pooling (R-MAC's MAC).

The network is the image extractor's, exported once more with free height and width and the
map as its output; the file is cached beside the pooled model with its own manifest,
checked on every load. The image is resized so its shorter side is ``side`` and both sides
are multiples of 32, the network's total stride, so each cell covers 32 x 32 input pixels.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from PIL import Image

from lookalike.errors import expect
from lookalike.extractors.base import check_rgb_images, l2_normalise
from lookalike.extractors.onnx import MODEL_SPECS, OnnxModelSpec, ensure_exported
from lookalike.loading import LoadOnce
from lookalike.paths import cache_dir
from lookalike.runtime import session_options

STRIDE = 32  # the networks' total stride: one map cell per 32 x 32 input pixels
MAX_ASPECT = 3.0  # a longer panorama is squeezed to this aspect: a wider pass costs too much
POOLINGS = ("gem", "max")
GEM_P = 3.0


@dataclass(frozen=True)
class FeatureMapInfo:
    """What a collection records about the map model: the network, the input side and
    the pooling, which together fix the regional vectors."""

    name: str
    side: int
    pooling: str
    version: str = "1"

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "version": self.version, "side": self.side,
                "pooling": self.pooling}


class FeatureMapModel(LoadOnce):
    """Feature maps of whole images, and pooled vectors of boxes on them."""

    kind: ClassVar[str] = "map"

    def __init__(self, model: str, *, side: int = 256, pooling: str = "gem",
                 threads: int | None = None, model_dir: Path | None = None) -> None:
        super().__init__()
        expect(model in MODEL_SPECS,
               f"expected a model among {sorted(MODEL_SPECS)}, got {model!r}")
        expect(isinstance(side, int) and STRIDE <= side <= 1024 and side % STRIDE == 0,
               f"expected a side that is a multiple of {STRIDE} between {STRIDE} and 1024, "
               f"got {side!r}")
        expect(pooling in POOLINGS, f"expected a pooling among {POOLINGS}, got {pooling!r}")
        # An int8 model's map is its float32 network's: pooling wants the full precision.
        self.spec: OnnxModelSpec = MODEL_SPECS[MODEL_SPECS[model].network]
        self.info = FeatureMapInfo(name=model, side=side, pooling=pooling)
        self.threads = threads
        self.model_dir = model_dir
        self._session: Any = None

    @property
    def dim(self) -> int:
        return self.spec.info.dim

    def model_path(self) -> Path:
        folder = self.model_dir or cache_dir() / "models"
        return folder / f"{self.spec.info.name}-map-v{self.spec.info.version}.onnx"

    def _load(self) -> None:
        import onnxruntime as ort

        path = ensure_exported(self.spec, self.model_path(), kind="map")
        self._session = ort.InferenceSession(str(path), sess_options=session_options(self.threads),
                                             providers=["CPUExecutionProvider"])

    # -- the pass ---------------------------------------------------------------------------

    def input_size(self, width: int, height: int) -> tuple[int, int]:
        """(width, height) the network sees: the shorter side ``side``, the longer one in
        proportion (at most ``MAX_ASPECT`` times), both rounded to multiples of 32."""
        expect(width > 0 and height > 0, f"expected a positive image size, got {width}x{height}")
        side = self.info.side
        longer = min(max(width, height) / min(width, height), MAX_ASPECT) * side
        longer_cells = max(1, round(longer / STRIDE))
        if width >= height:
            return longer_cells * STRIDE, side
        return side, longer_cells * STRIDE

    def feature_map(self, image: np.ndarray) -> np.ndarray:
        """The (channels, h, w) float32 map of one HxWx3 uint8 RGB image. The whole image
        is seen (a panorama longer than ``MAX_ASPECT`` squeezed), so a box given as
        fractions of the image falls on the same fractions of the map."""
        check_rgb_images([image])
        height, width = image.shape[:2]
        size = self.input_size(width, height)
        resized = np.asarray(Image.fromarray(image).resize(size, Image.Resampling.BILINEAR,
                                                           reducing_gap=3.0))
        batch = self.spec.preprocessing.normalise(resized[None])
        self.load()
        (found,) = self._session.run(["feature_map"], {"input": batch})
        result: np.ndarray = np.asarray(found[0], dtype=np.float32)
        return result

    # -- pooling ----------------------------------------------------------------------------

    def pool(self, feature_map: np.ndarray, boxes: Sequence[Sequence[float]]) -> np.ndarray:
        """(n, channels) unit vectors of ``boxes`` given as fractions (x0, y0, x1, y1) of the
        image's width and height; each covers at least one cell."""
        channels, rows, cols = feature_map.shape
        cells = np.maximum(feature_map, 0.0)  # ReLU6 outputs; guards GeM's power
        if self.info.pooling == "gem":
            cells = cells ** GEM_P
        pooled = np.empty((len(boxes), channels), dtype=np.float32)
        for i, box in enumerate(boxes):
            x0, x1 = _cell_span(box[0], box[2], cols)
            y0, y1 = _cell_span(box[1], box[3], rows)
            window = cells[:, y0:y1, x0:x1]
            if self.info.pooling == "gem":
                pooled[i] = window.mean(axis=(1, 2)) ** (1.0 / GEM_P)
            else:
                pooled[i] = window.max(axis=(1, 2))
        return l2_normalise(pooled)

    def embed_whole(self, image: np.ndarray) -> np.ndarray:
        """(1, channels): the whole image pooled, as a query is."""
        return self.pool(self.feature_map(image), [(0.0, 0.0, 1.0, 1.0)])


def _cell_span(start: float, end: float, cells: int) -> tuple[int, int]:
    """The cells [first, last) under the span [start, end] of 0..1; never empty."""
    first = min(cells - 1, max(0, math.floor(start * cells + 1e-6)))
    last = max(first + 1, min(cells, math.ceil(end * cells - 1e-6)))
    return first, last
