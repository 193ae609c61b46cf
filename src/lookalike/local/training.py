"""Training a vocabulary tree on folders of images, to reuse in other collections."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from itertools import islice
from pathlib import Path
from typing import Any

import numpy as np

from lookalike.discovery import discover_images
from lookalike.errors import ImageError, ValidationError, expect
from lookalike.images import DEFAULT_MAX_PIXELS, load_image
from lookalike.local.features import DESCRIPTOR_DIM, LocalFeatures, SiftExtractor
from lookalike.local.tree import VocabularyTree
from lookalike.progress import step

_WINDOW = 4  # images in flight: two per SIFT thread, so memory stays flat


def extract_all(sift: SiftExtractor, images: Iterable[np.ndarray]) -> Iterator[LocalFeatures]:
    """Features of each image, in order; OpenCV releases the GIL, so two threads use two cores.

    Only a few images are decoded ahead (``Executor.map`` would take them all at once).
    """
    pending = iter(images)
    with ThreadPoolExecutor(max_workers=2, thread_name_prefix="lookalike-sift") as pool:
        window = deque(pool.submit(sift.extract, image) for image in islice(pending, _WINDOW))
        while window:
            done = window.popleft().result()
            window.extend(pool.submit(sift.extract, image) for image in islice(pending, 1))
            yield done


def sample_descriptors(found: Iterable[LocalFeatures], limit: int, seed: int = 0) -> np.ndarray:
    """A uniform random sample of at most ``limit`` of all the descriptors of ``found``.

    Reservoir sampling (Vitter's algorithm R, a batch at a time): memory holds
    ``limit`` descriptors however many images stream past, and every descriptor
    has the same chance. (An equal share per image instead under-samples the
    detailed images, and cost 5 points of Oxford mAP when measured.)
    """
    rng = np.random.default_rng(seed)
    reservoir = np.empty((limit, DESCRIPTOR_DIM), np.float32)
    seen = 0
    for features in found:
        descriptors = features.descriptors
        free = min(max(limit - seen, 0), len(descriptors))
        reservoir[seen : seen + free] = descriptors[:free]
        rest = descriptors[free:]
        if len(rest):
            # Descriptor number t replaces a random slot with probability limit / (t + 1).
            slots = rng.integers(0, np.arange(seen + free, seen + len(descriptors)) + 1)
            keep = slots < limit
            reservoir[slots[keep]] = rest[keep]
        seen += len(descriptors)
    return reservoir[: min(seen, limit)].copy()


def tree_progress(done: int, total: int) -> None:
    """The tree's k-means as a stage of the run (``total`` is 100 per level)."""
    step("training the vocabulary tree (k-means; 100 per level)", done, total)


def train_vocabulary(
    paths: Sequence[Path], out: Path, *, features: str = "rootsift", max_features: int = 1500,
    max_side: int = 1024, branching: int = 10, depth: int = 6, max_images: int = 2000,
    max_descriptors: int = 1_000_000, max_pixels: int = DEFAULT_MAX_PIXELS,
    compact: bool = False, progress: Callable[[int, int], None] | None = None,
) -> dict[str, Any]:
    """Train a tree on a random sample of the images under ``paths`` and save it to ``out``
    (``compact``: centres stored as bytes, :meth:`VocabularyTree.compacted`)."""
    for name, value, least in (("branching", branching, 2), ("depth", depth, 1),
                               ("max_images", max_images, 1),
                               ("max_descriptors", max_descriptors, 4 * branching)):
        expect(isinstance(value, int) and value >= least,
               f"expected {name} >= {least}, got {value!r}")
    expect(depth <= 12, f"expected depth <= 12, got {depth}")
    if out.is_dir():
        raise ValidationError(f"{out}: expected a file name for the tree, got a directory")
    found = discover_images(list(paths))
    files = sorted(found.files)
    if len(files) > max_images:
        chosen = np.random.default_rng(0).choice(len(files), max_images, replace=False)
        files = [files[i] for i in sorted(chosen.tolist())]
    failures = [(error.source, error.reason) for error in found.failures]
    sift = SiftExtractor(features, max_features, max_side)
    started = time.perf_counter()
    decoded_count = 0

    def decoded() -> Iterator[np.ndarray]:
        nonlocal decoded_count
        for done, path in enumerate(files, start=1):
            try:
                yield load_image(path, max_pixels=max_pixels, min_side=max_side)
                decoded_count += 1
            except ImageError as error:
                failures.append((error.source, error.reason))
            if progress is not None:
                progress(done, len(files))

    descriptors = sample_descriptors(extract_all(sift, decoded()), max_descriptors)
    extract_seconds = time.perf_counter() - started
    if len(descriptors) < 4 * branching:
        raise ValidationError(f"expected images with local features under {list(map(str, paths))}"
                              f", got {len(descriptors)} descriptors")
    tree, stats = VocabularyTree.train(descriptors, features=features, branching=branching,
                                       depth=depth, compact=compact, progress=tree_progress)
    tree.save(out)
    return {"id": tree.id, "path": str(out), "images": decoded_count,
            "descriptors": stats.descriptors, "nodes": stats.nodes, "leaves": stats.leaves,
            "extract_seconds": round(extract_seconds, 2), "train_seconds": round(stats.seconds, 2),
            "features": features, "branching": branching, "depth": depth,
            "bytes": out.stat().st_size,
            "failures": [{"path": path, "reason": reason} for path, reason in failures]}
