"""Indexing throughput on 2 cores, and where the time goes.

Runs the real pipeline (``Collection.index``) end to end on a folder of photos,
then times each step in isolation on the same files: read, decode, resize and
crop (preprocessing), network inference (ONNX Runtime), and the catalog write.
Reports images/s for each model, and bytes per image on disk and in memory.

    python benchmarks/bench_indexing.py [--images ../shared/data/oxford5k_subset/jpg] [--limit 500]
    python benchmarks/bench_indexing.py --large 200   # 12-megapixel JPEGs, see below

The Oxford subset is downscaled to 512 pixels, far smaller than camera photos. ``--large N``
writes N 4032x3024 JPEGs (quality 90, upscaled from the Oxford images) to a temporary folder
and measures those instead, with the decode timed both at full size and at the reduced DCT
scale the pipeline uses.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from common import DEFAULT_DATA, markdown_table, save
from PIL import Image

from lookalike import Collection, GlobalChannelConfig
from lookalike.discovery import discover_images
from lookalike.extractors import make_extractor
from lookalike.extractors.onnx import OnnxExtractor
from lookalike.images import decode_image

MODELS = ("efficientnet-lite0", "efficientnet-lite1", "efficientnet-lite2", "mobilenetv2")


def isolated_steps(files: list[Path], model: str, batch: int) -> dict[str, float]:
    """Seconds per image for each step, each timed alone over all files."""
    extractor = make_extractor(model)
    if not isinstance(extractor, OnnxExtractor):
        raise TypeError(f"expected an ONNX model, got {model}")
    extractor.load()
    started = time.perf_counter()
    blobs = [path.read_bytes() for path in files]
    read = time.perf_counter() - started
    started = time.perf_counter()
    for blob, path in zip(blobs, files, strict=True):
        decode_image(blob, source=str(path))
    decode_full = time.perf_counter() - started
    started = time.perf_counter()
    side = extractor.preprocessing.resize_shorter
    images = [decode_image(blob, source=str(path), min_side=side)
              for blob, path in zip(blobs, files, strict=True)]
    decode = time.perf_counter() - started
    started = time.perf_counter()
    crops = [extractor.preprocessing(images[i : i + batch]) for i in range(0, len(images), batch)]
    preprocess = time.perf_counter() - started
    started = time.perf_counter()
    for tensor in crops:
        extractor.run_network(tensor)
    infer = time.perf_counter() - started
    n = len(files)
    return {"read_ms": 1e3 * read / n, "decode_full_ms": 1e3 * decode_full / n,
            "decode_ms": 1e3 * decode / n,
            "preprocess_ms": 1e3 * preprocess / n, "inference_ms": 1e3 * infer / n}


def pipeline_run(files: list[Path], model: str, batch: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch) / "images"
        folder.mkdir()
        for path in files:  # links keep the bytes on the same disk without copying
            (folder / path.name).symlink_to(path)
        collection = Collection(Path(scratch) / "c", batch_size=batch,
                                configs={"global": GlobalChannelConfig(extractor=model)}).open()
        collection.channels["global"].prepare()
        report = collection.index([folder])
        collection.search(files[0], k=1)  # builds the in-memory index that info() measures
        info = collection.info()
        collection.close()
        disk = sum(p.stat().st_size for p in (Path(scratch) / "c").rglob("*") if p.is_file())
    n = report.added
    return {
        "pipeline_images_per_s": report.images_per_s,
        "write_ms": 1e3 * report.stage_seconds["write"] / n,
        "disk_bytes_per_image": disk / n,
        "index_memory_bytes_per_image": info["channels"]["global"]["index_memory_bytes"] / n,
        "failed": len(report.failures),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--images", type=Path, default=DEFAULT_DATA / "oxford5k_subset" / "jpg")
    parser.add_argument("--limit", type=int, default=500)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--large", type=int, default=0, metavar="N",
                        help="measure N generated 4032x3024 JPEGs instead")
    args = parser.parse_args()
    files = discover_images([args.images]).files[: args.limit]
    with tempfile.TemporaryDirectory() as scratch:
        if args.large:
            files = make_large_jpegs(files[: args.large], Path(scratch))
        measure(files, args)


def make_large_jpegs(sources: list[Path], folder: Path) -> list[Path]:
    made = []
    for path in sources:
        target = folder / f"{path.stem}-12mp.jpg"
        Image.open(path).convert("RGB").resize((4032, 3024), Image.Resampling.BICUBIC).save(
            target, quality=90)
        made.append(target)
    return made


def measure(files: list[Path], args: argparse.Namespace) -> None:
    rows = []
    for model in MODELS:
        row: dict[str, Any] = {"model": model, "images": len(files)}
        row.update(pipeline_run(files, model, args.batch))
        row.update(isolated_steps(files, model, args.batch))
        steps = ("read_ms", "decode_ms", "preprocess_ms", "inference_ms", "write_ms")
        row["isolated_sum_images_per_s"] = 1e3 / sum(row[key] for key in steps)
        rows.append(row)
        print(row, flush=True)
    columns = ["model", "images", "pipeline_images_per_s", "isolated_sum_images_per_s", "read_ms",
               "decode_full_ms", "decode_ms", "preprocess_ms", "inference_ms", "write_ms",
               "disk_bytes_per_image", "index_memory_bytes_per_image"]
    print(markdown_table(rows, columns))
    sizes = np.array([path.stat().st_size for path in files])
    settings = {"images": str(args.images), "limit": args.limit, "batch": args.batch,
                "large_generated_4032x3024": args.large, "mean_file_bytes": float(sizes.mean())}
    print(f"saved {save('indexing_large' if args.large else 'indexing', settings, rows)}")


if __name__ == "__main__":
    main()
