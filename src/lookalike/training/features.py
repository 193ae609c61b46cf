"""The frozen base network's features of the training images, computed once and cached.

The default training fits a small head on top of the pretrained network, so the network
runs once per image, however many epochs and seeds follow: the features are kept in the
cache, named by the network and the data's fingerprint.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np

from lookalike.errors import ImageError, ValidationError
from lookalike.extractors import OnnxExtractor, make_extractor
from lookalike.images import load_image
from lookalike.paths import atomic_write_bytes, cache_dir
from lookalike.training.data import LabelledImages

Progress = Callable[[int, int], None]
_BATCH = 32


@dataclass(frozen=True)
class BaseFeatures:
    """The base network's L2-normalised features of the images that decoded, their labels,
    and the images that did not, each with its reason."""

    vectors: np.ndarray
    labels: tuple[str, ...]
    failures: tuple[tuple[str, str], ...]


def base_extractor(name: str) -> OnnxExtractor:
    extractor = make_extractor(name)
    if not isinstance(extractor, OnnxExtractor):
        raise ValidationError(f"expected a pretrained ONNX network to train on, got {name!r}")
    return extractor


def base_features(images: LabelledImages, extractor: OnnxExtractor, *,
                  progress: Progress | None = None) -> BaseFeatures:
    """The features of ``images`` by the network ``extractor``, from the cache when it has
    them."""
    base = extractor.info.name
    key = hashlib.sha256(f"{extractor.info.as_dict()}:{images.fingerprint()}".encode())
    path = cache_dir() / "train" / f"{base}-{key.hexdigest()[:16]}.npz"
    if path.is_file():
        with np.load(path, allow_pickle=False) as cached:
            kept = cached["kept"]
            return BaseFeatures(cached["vectors"],
                                tuple(str(label) for label in np.asarray(images.labels)[kept]),
                                tuple((str(a), str(b))
                                      for a, b in cached["failures"].reshape(-1, 2)))
    vectors, kept, failures = _extract(extractor, images, progress)
    buffer = io.BytesIO()
    np.savez(buffer, vectors=vectors, kept=np.asarray(kept, dtype=np.int64),
             failures=np.asarray(failures, dtype=str).reshape(-1, 2))
    atomic_write_bytes(path, buffer.getvalue())
    return BaseFeatures(vectors, tuple(images.labels[i] for i in kept), tuple(failures))


def decoded_batches(images: LabelledImages, side: int, failures: list[tuple[str, str]],
                    progress: Progress | None) -> Iterator[tuple[list[int], list[np.ndarray]]]:
    """The images in batches, decoded (shorter side at least ``side``): each batch's row
    numbers and pixels. A file that does not decode is added to ``failures`` with its
    reason and left out; the rest trains."""
    for start in range(0, len(images.paths), _BATCH):
        rows, decoded = [], []
        for index in range(start, min(start + _BATCH, len(images.paths))):
            try:
                decoded.append(load_image(images.paths[index], min_side=side))
                rows.append(index)
            except ImageError as error:
                failures.append((str(images.paths[index]), error.reason))
        if decoded:
            yield rows, decoded
        if progress is not None:
            progress(min(start + _BATCH, len(images.paths)), len(images.paths))


def _extract(extractor: OnnxExtractor, images: LabelledImages, progress: Progress | None
             ) -> tuple[np.ndarray, list[int], list[tuple[str, str]]]:
    parts: list[np.ndarray] = []
    kept: list[int] = []
    failures: list[tuple[str, str]] = []
    side = int(extractor.preprocessing.resize_shorter)
    for rows, decoded in decoded_batches(images, side, failures, progress):
        parts.append(extractor.embed(decoded))
        kept.extend(rows)
    dim = extractor.info.dim
    return (np.concatenate(parts) if parts else np.empty((0, dim), np.float32)), kept, failures
