"""A tiny, model-free global descriptor: the image shrunk to a few pixels.

This is the "tiny images" descriptor (Torralba, Fergus & Freeman, PAMI 2008):
the image resized to 8x8 in colour, mean-centred per image. It is a weak but
honest baseline, instant to compute and needing no weights, which also makes it
the extractor that unit tests use.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from PIL import Image

from lookalike.extractors.base import Extractor, ExtractorInfo, register_extractor

SIDE = 8


@register_extractor("thumbnail")
class ThumbnailExtractor(Extractor):
    info = ExtractorInfo(name="thumbnail", version="1", dim=SIDE * SIDE * 3)

    def _embed(self, images: Sequence[np.ndarray]) -> np.ndarray:
        rows = []
        for image in images:
            small = Image.fromarray(image).resize((SIDE, SIDE), Image.Resampling.BOX)
            pixels = np.asarray(small, dtype=np.float32).reshape(-1)
            rows.append(pixels - pixels.mean())
        return np.stack(rows)
