"""Indexing on Ray against indexing in this process, on the same photos and machine.

    python benchmarks/bench_ray.py [--data ../shared/data] [--images 200] [--side 640]

Makes ``--images`` 640-px photos (``bench_profile.py``'s: Oxford buildings, one in four an
LFW portrait) and indexes them into fresh collections with the local engine and with the
Ray engine (a one-node Ray started here with 2 CPUs), at 1 and 2 workers, for the global
channel alone and for global + local (a vocabulary tree trained once beforehand, so no run
trains). The Ray runs include starting the actors and loading their models, which is what a
user waits for; model loading in this process is left out of both, as the index report
does. Ray's overhead per image is the difference of the two engines' seconds per image at
the same workers. Each Ray collection is checked against the local one: the same images
and the same stored rows.
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
        for setup, channels in SETUPS.items():
            for workers in (1, 2):
                found = {engine: index(photos, scratch / f"{engine}-{setup}-{workers}",
                                       channels, tree, engine, workers)
                         for engine in ("local", "ray")}
                same = (stored_rows(scratch / f"local-{setup}-{workers}")
                        == stored_rows(scratch / f"ray-{setup}-{workers}"))
                local, distributed = found["local"], found["ray"]
                row = {"channels": setup, "workers": workers,
                       "local_images_per_s": local["images_per_s"],
                       "ray_images_per_s": distributed["images_per_s"],
                       "ray_vs_local": round(distributed["images_per_s"]
                                             / local["images_per_s"], 3),
                       "ray_overhead_ms_per_image": round(
                           1000 * (distributed["seconds"] - local["seconds"])
                           / max(local["images"], 1), 1),
                       "ray_seconds": distributed["seconds"],
                       "local_seconds": local["seconds"],
                       "same_rows": same, "failed": local["failed"] + distributed["failed"],
                       "load_average": distributed["load_average"]}
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
