"""Sharded search against one collection: the same rankings, and what the fan-out costs.

    python benchmarks/bench_shards.py [--data ../shared/data] [--k 10]

Indexes the Oxford 1k subset once (global, regions, local and text channels, the defaults),
splits it with ``split_collection`` into 1, 2 and 4 shards, and runs Oxford images as
queries (whole image, k results) against the one collection and against the shards:
searched in this process, and as Ray actors of a one-node Ray started here (2 CPUs). Each
channel is searched alone (text by the query image's own labels), then all of them fused
(``auto``: the image channels, as without a learned ranker). For each it reports the query
latency p50/p99 and compares every ranking with the one collection's (image ids in order;
the goal is no difference).
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from common import DEFAULT_DATA, markdown_table, save

from lookalike import Collection
from lookalike.collection import ShardedCollection, split_collection
from lookalike.images import load_image

INDEXED = ("global", "regions", "local", "text")
CHANNELS = (*INDEXED, "auto")


def timed(search: Any, queries: list[np.ndarray], k: int, channel: str
          ) -> tuple[list[list[int]], list[float]]:
    rankings, seconds = [], []
    for query in queries:
        started = time.perf_counter()
        found = search(query, k, channel)
        seconds.append(time.perf_counter() - started)
        rankings.append(found)
    return rankings, seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--queries", type=int, default=100)
    args = parser.parse_args()
    import ray

    photos = sorted((args.data / "oxford5k_subset" / "jpg").glob("*.jpg"))
    chosen = photos[::max(1, len(photos) // args.queries)][:args.queries]
    queries = [load_image(path) for path in chosen]
    scratch = Path(tempfile.mkdtemp(prefix="lookalike-shards-"))
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    rows: list[dict[str, Any]] = []
    try:
        whole_root = scratch / "whole"
        with Collection(whole_root, channels=list(INDEXED)) as whole:
            whole.index([args.data / "oxford5k_subset" / "jpg"])
        with Collection(whole_root).open() as whole:
            reference = {channel: timed(
                lambda q, k, c: [r.image_id for r in whole.search(q, k=k, channel=c)],
                queries, args.k, channel) for channel in CHANNELS}
        for channel in CHANNELS:
            rows.append(_row(channel, "one collection", 1, reference[channel],
                             reference[channel][0]))
        for shards in (1, 2, 4):
            root = scratch / f"shards-{shards}"
            split_collection(whole_root, root, shards)
            for mode, address in (("in process", None), ("Ray actors", "local")):
                with ShardedCollection(root, address=address) as sharded:
                    for channel in CHANNELS:
                        found = timed(lambda q, k, c, s=sharded: [
                            r.image_id for r in s.search(q, k=k, channel=c).results],
                            queries, args.k, channel)
                        rows.append(_row(channel, mode, shards, found,
                                         reference[channel][0]))
                        print(rows[-1], flush=True)
    finally:
        ray.shutdown()
        shutil.rmtree(scratch, ignore_errors=True)
    print(markdown_table(rows, list(rows[0])))
    save("shards", {"data": "oxford5k_subset (1,008 images), evenly spaced images as queries",
                    "queries": len(queries), "k": args.k, "channels": list(CHANNELS),
                    "indexed": list(INDEXED),
                    "ray": "ray.init(num_cpus=2), one node",
                    "load_average_after": os.getloadavg()[0]}, rows)


def _row(channel: str, mode: str, shards: int,
         found: tuple[list[list[int]], list[float]], reference: list[list[int]]
         ) -> dict[str, Any]:
    rankings, seconds = found
    milliseconds = 1000 * np.array(seconds)
    return {"channel": channel, "search": mode, "shards": shards,
            "p50_ms": round(float(np.percentile(milliseconds, 50)), 2),
            "p99_ms": round(float(np.percentile(milliseconds, 99)), 2),
            "rankings_compared": len(rankings),
            "rankings_different": sum(a != b for a, b in zip(rankings, reference, strict=True))}


if __name__ == "__main__":
    main()
