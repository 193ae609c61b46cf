"""The extractor contract and its registry.

An extractor turns decoded RGB images into L2-normalised float32 embeddings.
Following the timm/immich pattern, construction is cheap and only stores
parameters; :meth:`Extractor.load` does the expensive work once and is
idempotent; :meth:`Extractor.embed` validates, then calls the one method a
backend implements, :meth:`Extractor._embed`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from lookalike.errors import ValidationError, expect
from lookalike.loading import LoadOnce
from lookalike.registry import Registry


@dataclass(frozen=True)
class ExtractorInfo:
    """What a collection records about the extractor that filled it."""

    name: str
    version: str
    dim: int
    metric: str = "cosine"

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "version": self.version, "dim": self.dim, "metric": self.metric}


class Extractor(LoadOnce, ABC):
    """Embeds a batch of HxWx3 uint8 RGB images into (n, dim) unit vectors."""

    info: ClassVar[ExtractorInfo]

    @abstractmethod
    def _embed(self, images: Sequence[np.ndarray]) -> np.ndarray:
        """Return raw (n, dim) float32 embeddings; the base class normalises them."""

    def embed(self, images: Sequence[np.ndarray]) -> np.ndarray:
        expect(len(images) > 0, "expected at least one image, got an empty batch")
        check_rgb_images(images)
        self.load()
        vectors = np.asarray(self._embed(images), dtype=np.float32)
        expect(
            vectors.shape == (len(images), self.info.dim),
            f"expected embeddings of shape {(len(images), self.info.dim)}, got {vectors.shape}",
        )
        return l2_normalise(vectors)


def check_rgb_images(images: Sequence[np.ndarray]) -> None:
    """Raise unless every image is an HxWx3 uint8 RGB array, naming what came instead."""
    for image in images:
        if not (isinstance(image, np.ndarray) and image.ndim == 3 and image.shape[2] == 3
                and image.dtype == np.uint8):
            found = (f"{type(image).__name__} {getattr(image, 'shape', '')} "
                     f"{getattr(image, 'dtype', '')}")
            raise ValidationError(f"expected HxWx3 uint8 RGB arrays, got {found.strip()}")


def l2_normalise(vectors: np.ndarray) -> np.ndarray:
    """Scale rows to unit length; an all-zero row stays zero instead of becoming NaN."""
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    normalised: np.ndarray = (vectors / np.maximum(norms, 1e-12)).astype(np.float32)
    return normalised


ExtractorFactory = Callable[..., Extractor]
EXTRACTORS: Registry[ExtractorFactory] = Registry("extractor", group="lookalike.extractors")


def register_extractor(name: str) -> Callable[[ExtractorFactory], ExtractorFactory]:
    """Class or function decorator adding an extractor factory under ``name``."""
    return EXTRACTORS.register(name)


def available_extractors() -> list[str]:
    return EXTRACTORS.names()


def make_extractor(name: str, **params: Any) -> Extractor:
    """Build (but do not load) the extractor registered as ``name``, or the model file a
    name ending in ``.onnx`` names (one made by ``lookalike train``)."""
    if name.lower().endswith(".onnx"):
        from lookalike.extractors.trained import TrainedExtractor

        return TrainedExtractor(name, **params)
    return EXTRACTORS.get(name)(**params)
