"""Duplicates: edited copies found among photos of the same buildings and objects.

    python benchmarks/bench_duplicates.py [--data ../shared/data] [--images 500]

The corpus is the first ``--images`` photos of the Oxford 1k subset and the 56 UKBench
photos (four views of each of 14 objects: hard negatives, similar but not copies). For 100
of them, chosen at random (seeded), an edited copy is added, 20 of each edit: JPEG at
quality 30, half the size, the central 85%, brighter and more contrasted, turned 3 degrees
and cropped; and 10 byte-identical copies. A pair is right when it is a photo and its
copy; every other pair found is a false pair. Lookalike's near duplicates (cosine of the
global vectors, efficientnet-lite0 int8 as indexed by default) at several thresholds,
alone and confirmed by Lookalike's own pHash, side by side with a 64-bit perceptual hash
(imagehash's pHash, the method of imagededup's PHash) at several Hamming distances, in the
same run.
"""

from __future__ import annotations

import argparse
import io
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from common import DEFAULT_DATA, markdown_table, save
from PIL import Image, ImageEnhance

from lookalike import Collection
from lookalike.collection import find_duplicates

EDITS: dict[str, Callable[[Image.Image], Image.Image]] = {
    "jpeg-q30": lambda im: Image.open(_jpeg(im, 30)),
    "half-size": lambda im: im.resize((im.width // 2, im.height // 2)),
    "crop-85": lambda im: im.crop((round(im.width * 0.075), round(im.height * 0.075),
                                   round(im.width * 0.925), round(im.height * 0.925))),
    "brighter": lambda im: ImageEnhance.Contrast(ImageEnhance.Brightness(im).enhance(1.2))
    .enhance(1.2),
    "turned-3": lambda im: im.rotate(3, resample=Image.Resampling.BILINEAR).crop(
        (round(im.width * 0.05), round(im.height * 0.05), round(im.width * 0.95),
         round(im.height * 0.95))),
}
THRESHOLDS = (0.85, 0.90, 0.93, 0.95, 0.97)
COMBINED = [(t, bits) for t in (0.80, 0.85, 0.90) for bits in (4, 6, 8, 12, 16)]
HAMMING = (2, 4, 6, 8, 10, 12)


def _jpeg(image: Image.Image, quality: int) -> io.BytesIO:
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=quality)
    buffer.seek(0)
    return buffer


def corpus(data: Path, images: int, folder: Path) -> tuple[list[Path], set[tuple[str, str]]]:
    """The photos, their copies (written to ``folder``), and the true (photo, copy) pairs."""
    photos = sorted((data / "oxford5k_subset" / "jpg").glob("*.jpg"))[:images]
    photos += sorted((data / "ukbench56" / "full").glob("*.jpg"))
    rng = np.random.default_rng(0)
    chosen = rng.choice(len(photos), 110, replace=False)
    truth = set()
    folder.mkdir(parents=True)
    edits = [name for name in EDITS for _ in range(20)] + ["exact"] * 10
    for position, edit in zip(chosen.tolist(), edits, strict=True):
        source = photos[position]
        copy = folder / f"{source.stem}-{edit}.jpg"
        if edit == "exact":
            shutil.copyfile(source, copy)
        else:
            EDITS[edit](Image.open(source).convert("RGB")).save(copy, quality=92)
        truth.add((str(source), str(copy)))
    return photos, truth


def scored(found: set[frozenset[str]], truth: set[tuple[str, str]]) -> dict[str, Any]:
    right = {frozenset(pair) for pair in truth}
    by_edit = {edit: sum(1 for a, b in truth if b.endswith(f"-{edit}.jpg")
                         and frozenset((a, b)) in found) for edit in [*EDITS, "exact"]}
    return {"found": len(found & right), "of": len(right), "recall": round(
        len(found & right) / len(right), 3), "false_pairs": len(found - right),
        "found_by_edit": " ".join(f"{edit}:{n}" for edit, n in by_edit.items())}


def lookalike_rows(root: Path, truth: set[tuple[str, str]]) -> list[dict[str, Any]]:
    rows = []
    settings = [(t, None) for t in THRESHOLDS] + COMBINED
    with Collection(root) as collection:
        for threshold, bits in settings:
            started = time.perf_counter()
            groups = find_duplicates(collection, threshold=threshold, max_bits=bits)
            seconds = time.perf_counter() - started
            pairs = {frozenset((a, b)) for group in groups for a in group.paths
                     for b in group.paths if a < b}
            method = (f"lookalike, cosine >= {threshold}" if bits is None else
                      f"lookalike, cosine >= {threshold} and pHash <= {bits} bits")
            rows.append({"method": method, **scored(pairs, truth),
                         "seconds": round(seconds, 2)})
            print(rows[-1], flush=True)
    return rows


def phash_rows(files: list[Path], truth: set[tuple[str, str]]) -> list[dict[str, Any]]:
    import imagehash

    started = time.perf_counter()
    hashes = np.array([imagehash.phash(Image.open(path)).hash.flatten() for path in files])
    hashing = time.perf_counter() - started
    distances = (hashes[:, None, :] != hashes[None, :, :]).sum(axis=2)
    rows = []
    for limit in HAMMING:
        first, second = np.nonzero(np.triu(distances <= limit, k=1))
        pairs = {frozenset((str(files[a]), str(files[b]))) for a, b in zip(first, second,
                                                                          strict=True)}
        rows.append({"method": f"pHash (imagehash), Hamming <= {limit}",
                     **scored(pairs, truth), "seconds": round(hashing, 2)})
        print(rows[-1], flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--images", type=int, default=500)
    args = parser.parse_args()
    scratch = Path(tempfile.mkdtemp(prefix="lookalike-duplicates-"))
    try:
        photos, truth = corpus(args.data, args.images, scratch / "copies")
        files = photos + sorted((scratch / "copies").glob("*.jpg"))
        started = time.perf_counter()
        with Collection(scratch / "c") as collection:
            report = collection.index(files)
        print(f"indexed {report.added} images in {time.perf_counter() - started:.1f} s")
        rows = lookalike_rows(scratch / "c", truth) + phash_rows(files, truth)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    print(markdown_table(rows, list(rows[0])))
    save("duplicates", {"images": len(files), "copies": len(truth),
                        "edits": [*EDITS, "exact"], "extractor": "efficientnet-lite0 (int8)"},
         rows)


if __name__ == "__main__":
    main()
