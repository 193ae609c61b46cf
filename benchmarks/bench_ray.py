"""Indexing on Ray against indexing in this process, on the same photos and machine.

    python benchmarks/bench_ray.py [--data ../shared/data] [--images 200] [--side 640]

Makes ``--images`` 640-px photos (``bench_profile.py``'s: Oxford buildings, one in four an
LFW portrait) and indexes them into fresh collections with the local engine and with the
Ray engine (a one-node Ray started here with 2 CPUs), at 1 and 2 workers, for the global
channel alone and for global + local (a vocabulary tree trained once beforehand, so no run
trains). Model loading in this process is left out, as the index report does; the Ray runs
include starting their actors and loading the models in them. Each setup indexes the first
half of the photos, then all of them, into fresh collections: the difference gives the
seconds per image, the rest the fixed cost of a run (for Ray, mostly starting the actors).
Ray's overhead per image is the difference of the two engines' seconds per image. Each Ray
collection is checked against the local one: the same images and the same stored rows.
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from bench_profile import make_photos, train_tree
from common import DEFAULT_DATA, markdown_table, save

from lookalike import Collection
from lookalike.collection import LocalChannelConfig

SETUPS = {"global": ["global"], "global + local": ["global", "local"]}


def index(photos: Path, root: Path, channels: list[str], tree: Path, engine: str,
          workers: int) -> dict[str, Any]:
    configs: dict[str, Any] = {"local": LocalChannelConfig(vocabulary=str(tree), depth=4)}
    with Collection(root, channels=channels, engine=engine, workers=workers,
                    configs={name: configs[name] for name in channels if name in configs}
                    ) as collection:
        started = time.perf_counter()
        report = collection.index([photos])
        wall = time.perf_counter() - started - report.prepare_seconds
    return {"images": report.processed, "failed": len(report.failures),
            "seconds": round(wall, 2), "images_per_s": round(report.processed / wall, 2),
            "load_average": round(os.getloadavg()[0], 2)}


def stored_rows(root: Path) -> dict[tuple[str, str], list[bytes]]:
    with Collection(root).open() as collection:
        paths = {record.id: record.path for record in collection.images()}
        return {(name, paths[image_id]): blobs for name in collection.channels
                for image_id, blobs in collection.catalog.vectors.of_images(
                    name, list(paths)).items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--images", type=int, default=200)
    parser.add_argument("--side", type=int, default=640)
    args = parser.parse_args()
    import ray

    scratch = Path(tempfile.mkdtemp(prefix="lookalike-ray-bench-"))
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    rows: list[dict[str, Any]] = []
    try:
        photos = scratch / "photos"
        make_photos(args.data, photos, args.images, args.side)
        tree = scratch / "tree.npz"
        train_tree(photos, tree)
        half = scratch / "half"
        half.mkdir()
        for path in sorted(photos.glob("*.jpg"))[:args.images // 2]:
            shutil.copy(path, half / path.name)
        for setup, channels in SETUPS.items():
            for workers in (1, 2):
                row: dict[str, Any] = {"channels": setup, "workers": workers}
                same = True
                for engine in ("local", "ray"):
                    runs = [index(folder, scratch / f"{engine}-{setup}-{workers}-{folder.name}",
                                  channels, tree, engine, workers) for folder in (half, photos)]
                    per_image = ((runs[1]["seconds"] - runs[0]["seconds"])
                                 / (runs[1]["images"] - runs[0]["images"]))
                    row[f"{engine}_images_per_s"] = runs[1]["images_per_s"]
                    row[f"{engine}_ms_per_image"] = round(1000 * per_image, 2)
                    row[f"{engine}_fixed_s"] = round(runs[1]["seconds"]
                                                     - per_image * runs[1]["images"], 2)
                    row["failed"] = row.get("failed", 0) + runs[1]["failed"]
                for folder in (half, photos):
                    same = same and (
                        stored_rows(scratch / f"local-{setup}-{workers}-{folder.name}")
                        == stored_rows(scratch / f"ray-{setup}-{workers}-{folder.name}"))
                row["ray_vs_local"] = round(row["ray_images_per_s"]
                                            / row["local_images_per_s"], 3)
                row["ray_overhead_ms_per_image"] = round(row["ray_ms_per_image"]
                                                         - row["local_ms_per_image"], 2)
                row["same_rows"] = same
                row["load_average"] = round(os.getloadavg()[0], 2)
                print(row, flush=True)
                rows.append(row)
    finally:
        ray.shutdown()
        shutil.rmtree(scratch, ignore_errors=True)
    print(markdown_table(rows, list(rows[0])))
    save("ray_indexing", {"images": args.images, "side": args.side,
                          "ray": "ray.init(num_cpus=2), one node, this machine",
                          "photos": "oxford5k_subset, every 4th an LFW portrait"}, rows)


if __name__ == "__main__":
    main()
