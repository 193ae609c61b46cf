"""Sample photos for the demo, taken from scikit-image's bundled data (no network).

The stereo pair of a motorcycle gives the demo a real "same object, other
viewpoint" query: the right view is kept out of the collection and used to
search it, and the left view should come first.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from lookalike.errors import MissingDependencyError

DATABASE_SAMPLES = (
    "astronaut", "chelsea", "coffee", "rocket", "hubble_deep_field", "immunohistochemistry",
    "retina", "camera", "horse", "colorwheel", "logo", "brick", "grass", "gravel", "moon",
    "motorcycle_left",
)
QUERY_SAMPLE = "motorcycle_right"


def _loader(data: Any, name: str) -> Callable[[], np.ndarray]:
    if name.startswith("motorcycle_"):
        return lambda: np.asarray(data.stereo_motorcycle()[0 if name.endswith("left") else 1])
    return lambda: np.asarray(getattr(data, name)())


def load_sample(name: str) -> np.ndarray:
    """One sample photo by name (:data:`DATABASE_SAMPLES`, :data:`QUERY_SAMPLE`) as an RGB
    uint8 array."""
    try:
        from skimage import data
    except ImportError as error:
        raise MissingDependencyError(
            "scikit-image", "the sample photos", "samples") from error
    image = _loader(data, name)()
    if image.dtype == bool:  # the horse is a silhouette
        image = image.astype(np.uint8) * 255
    if image.ndim == 2:  # camera, moon and the like are grey
        image = np.stack([image] * 3, axis=2)
    return np.ascontiguousarray(image[..., :3], dtype=np.uint8)


def write_sample_images(folder: Path) -> tuple[Path, Path]:
    """Write the sample photos as PNG files (once); return (database folder, query image)."""
    try:
        from skimage import data
    except ImportError as error:
        raise MissingDependencyError(
            "scikit-image", "the demo's sample photos", "samples") from error
    database = folder / "database"
    database.mkdir(parents=True, exist_ok=True)
    for name in DATABASE_SAMPLES:
        target = database / f"{name}.png"
        if not target.exists():
            Image.fromarray(_loader(data, name)()).save(target)
    query = folder / f"{QUERY_SAMPLE}.png"
    if not query.exists():
        Image.fromarray(_loader(data, QUERY_SAMPLE)()).save(query)
    return database, query
