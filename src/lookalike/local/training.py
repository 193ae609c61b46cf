"""Training a vocabulary tree on folders of images, to reuse in other collections."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from lookalike.errors import ImageError, ValidationError
from lookalike.images import DEFAULT_MAX_PIXELS, discover_images, load_image
from lookalike.local.features import DESCRIPTOR_DIM, LocalFeatures, SiftExtractor
from lookalike.local.tree import VocabularyTree


def extract_all(sift: SiftExtractor, images: Iterable[np.ndarray]) -> Iterator[LocalFeatures]:
    """Features of each image, in order; OpenCV releases the GIL, so two threads use two cores."""
    with ThreadPoolExecutor(max_workers=2, thread_name_prefix="lookalike-sift") as pool:
        yield from pool.map(sift.extract, images)


def sample_descriptors(found: Iterable[LocalFeatures], limit: int, seed: int = 0) -> np.ndarray:
    """All descriptors of ``found``, or a random ``limit`` of them (kept in their order)."""
    parts = [features.descriptors for features in found]
    descriptors = np.concatenate(parts) if parts else np.empty((0, DESCRIPTOR_DIM), np.float32)
    if len(descriptors) > limit:
        keep = np.random.default_rng(seed).choice(len(descriptors), limit, replace=False)
        descriptors = descriptors[np.sort(keep)]
    return descriptors


def train_vocabulary(
    paths: Sequence[Path], out: Path, *, features: str = "rootsift", max_features: int = 1500,
    max_side: int = 1024, branching: int = 10, depth: int = 6, max_images: int = 2000,
    max_descriptors: int = 1_000_000, max_pixels: int = DEFAULT_MAX_PIXELS,
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, Any]:
    """Train a tree on a random sample of the images under ``paths`` and save it to ``out``."""
    found = discover_images(list(paths))
    files = sorted(found.files)
    if len(files) > max_images:
        chosen = np.random.default_rng(0).choice(len(files), max_images, replace=False)
        files = [files[i] for i in sorted(chosen.tolist())]
    failures = [(error.source, error.reason) for error in found.failures]
    sift = SiftExtractor(features, max_features, max_side)
    started = time.perf_counter()

    def decoded() -> Iterator[np.ndarray]:
        for done, path in enumerate(files, start=1):
            try:
                yield load_image(path, max_pixels=max_pixels, min_side=max_side)
            except ImageError as error:
                failures.append((error.source, error.reason))
            if progress is not None:
                progress(done, len(files))

    descriptors = sample_descriptors(extract_all(sift, decoded()), max_descriptors)
    extract_seconds = time.perf_counter() - started
    if len(descriptors) < branching:
        raise ValidationError(f"expected images with local features under {list(map(str, paths))}"
                              f", got {len(descriptors)} descriptors")
    tree, stats = VocabularyTree.train(descriptors, features=features, branching=branching,
                                       depth=depth)
    tree.save(out)
    return {"id": tree.id, "path": str(out), "images": len(files) - len(failures),
            "descriptors": stats.descriptors, "nodes": stats.nodes, "leaves": stats.leaves,
            "extract_seconds": round(extract_seconds, 2), "train_seconds": round(stats.seconds, 2),
            "features": features, "branching": branching, "depth": depth,
            "failures": [{"path": path, "reason": reason} for path, reason in failures]}
