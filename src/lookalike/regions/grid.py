"""Class-agnostic regions: square windows at several scales, laid out as R-MAC does.

R-MAC (Tolias, Sicre & Jégou, "Particular object retrieval with integral max-pooling of CNN
activations", ICLR 2016) samples square regions at scales ``l = 1..L``: at scale ``l`` the
side is ``2 * min(W, H) / (l + 1)``, and windows are spread evenly along each dimension
with consecutive windows overlapping by about 40%. R-MAC pools them on a feature map;
Lookalike crops them from the image and embeds each crop, so a crop of something the
detector has no name for (a door, a logo, a window) still has a region to match.
"""

from __future__ import annotations

import math

from lookalike.errors import expect
from lookalike.images import Box

OVERLAP = 0.4
MIN_SIDE = 2.0  # pixels: a smaller window would be empty once cropped


def grid_regions(width: int, height: int, levels: tuple[int, ...]) -> list[Box]:
    """The R-MAC windows of a ``width`` x ``height`` image at the given scales."""
    expect(width > 0 and height > 0, f"expected a positive image size, got {width}x{height}")
    regions: list[Box] = []
    for level in levels:
        expect(isinstance(level, int) and level >= 1, f"expected scales >= 1, got {level!r}")
        side = 2.0 * min(width, height) / (level + 1)
        if side < MIN_SIDE:
            continue  # a tiny image (a 1x1 spacer) has no windows at this scale
        for y in _starts(height, side):
            for x in _starts(width, side):
                regions.append((x, y, x + side, y + side))
    return regions


def _starts(extent: int, side: float) -> list[float]:
    """Evenly spread window starts covering ``extent`` with about 40% overlap."""
    if side >= extent:
        return [0.0]
    count = math.ceil((extent - side) / (side * (1 - OVERLAP))) + 1
    step = (extent - side) / (count - 1)
    return [i * step for i in range(count)]


def square_box(box: Box, width: int, height: int) -> Box:
    """``box`` grown to a square around its centre, shifted to stay inside the image.

    The image embedder centre-crops its input to a square; a square region keeps all of
    the object in view instead of cutting the ends off a long one.
    """
    x0, y0, x1, y1 = box
    side = min(max(x1 - x0, y1 - y0), width, height)
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    left = min(max(cx - side / 2, 0.0), width - side)
    top = min(max(cy - side / 2, 0.0), height - side)
    return (left, top, left + side, top + side)
