"""R-MAC windows and square regions, checked against the paper's layout by hand."""

from __future__ import annotations

import pytest

from lookalike.errors import ValidationError
from lookalike.regions.grid import grid_regions, square_box


def test_rmac_layout_of_a_landscape_photo() -> None:
    # 640x480: scale 2 has side 320, 3 across and 2 down; scale 3 side 240, 4 x 3.
    two = grid_regions(640, 480, (2,))
    three = grid_regions(640, 480, (3,))
    assert len(two) == 6 and len(three) == 12
    assert all(x1 - x0 == pytest.approx(320) and y1 - y0 == pytest.approx(320)
               for x0, y0, x1, y1 in two)
    xs = sorted({round(box[0], 3) for box in two})
    assert xs == [0.0, 160.0, 320.0]  # evenly spread, the last one ends at the edge
    overlap = 1 - (xs[1] - xs[0]) / 320
    assert overlap == pytest.approx(0.5)  # the nearest to 40% that covers 640 with 3
    assert max(box[2] for box in three) == pytest.approx(640)
    assert max(box[3] for box in three) == pytest.approx(480)
    assert len(grid_regions(640, 480, (1,))) == 2  # one square per end of the long side
    assert grid_regions(100, 100, ()) == []


def test_bad_scales_and_sizes() -> None:
    with pytest.raises(ValidationError, match="scales"):
        grid_regions(100, 100, (0,))
    with pytest.raises(ValidationError, match="image size"):
        grid_regions(0, 100, (2,))


def test_square_box_grows_and_stays_inside() -> None:
    assert square_box((10, 10, 30, 50), 100, 100) == (0.0, 10.0, 40.0, 50.0)  # shifted right
    assert square_box((40, 40, 60, 50), 100, 100) == (40.0, 35.0, 60.0, 55.0)
    # Longer than the image's short side: the whole height, centred where it can be.
    assert square_box((0, 0, 200, 20), 200, 100) == (50.0, 0.0, 150.0, 100.0)
