"""Image preprocessing that travels with each model.

A model is only meaningful with the exact resize, crop and normalisation it was
trained with, so every extractor spec carries one :class:`Preprocessing` and its
manifest records it. Changing any field changes the embeddings, so the
extractor's version must be bumped with it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from PIL import Image

from lookalike.errors import expect


@dataclass(frozen=True)
class Preprocessing:
    """Resize the shorter side, centre-crop a square, scale to 0..1, then normalise.

    ``mean`` and ``std`` are per RGB channel on the 0..1 scale, as torchvision writes
    them. A ``resize_shorter`` equal to ``crop`` keeps the whole shorter side.
    """

    resize_shorter: int
    crop: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]

    def __post_init__(self) -> None:
        expect(self.crop > 0, f"expected a positive crop size, got {self.crop}")
        expect(
            self.resize_shorter >= self.crop,
            f"expected resize_shorter >= crop, got {self.resize_shorter} < {self.crop}",
        )

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def resize_and_crop(self, image: np.ndarray) -> np.ndarray:
        """Return the ``crop`` x ``crop`` x 3 uint8 centre crop of the resized image.

        Only the centred square of the shorter side can reach the crop, so it is cut
        out before resizing: the same result, less work, and no enormous intermediate
        image for a long thin panorama.
        """
        height, width = image.shape[:2]
        side = min(height, width)
        top, left = (height - side) // 2, (width - side) // 2
        square = Image.fromarray(image[top : top + side, left : left + side])
        # reducing_gap makes Pillow shrink big photos in two steps: much faster, same quality.
        resized = square.resize((self.resize_shorter,) * 2, Image.Resampling.BILINEAR,
                                reducing_gap=3.0)
        offset = (self.resize_shorter - self.crop) // 2
        return np.asarray(resized.crop((offset, offset, offset + self.crop, offset + self.crop)))

    def normalise(self, crops: np.ndarray) -> np.ndarray:
        """uint8 NHWC crops to the float32 NCHW tensor the network takes."""
        mean = np.asarray(self.mean, dtype=np.float32)[:, None, None] * 255.0
        inv_std = 1.0 / (np.asarray(self.std, dtype=np.float32)[:, None, None] * 255.0)
        # Transposing the uint8 crops before the float conversion, then working in place,
        # is about five times faster than converting first.
        batch = np.ascontiguousarray(crops.transpose(0, 3, 1, 2)).astype(np.float32)
        batch -= mean
        batch *= inv_std
        return batch

    def __call__(self, images: Sequence[np.ndarray]) -> np.ndarray:
        expect(len(images) > 0, "expected at least one image, got an empty batch")
        return self.normalise(np.stack([self.resize_and_crop(image) for image in images]))


IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
