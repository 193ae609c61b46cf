"""What dynamic batching could gain a server: global-channel embeddings per second when
two requests run at once, each with one thread, for batches of 1 to 8 query images.

    python benchmarks/bench_batching.py [--seconds 10]

A batching server waits until a few queries have arrived and embeds them in one network
call. This measures the ceiling of that gain: the batches are ready, nobody waits for
them to fill. Side by side in the same run: one request at a time with every core
(``intra_op_num_threads`` 2, batch 1), as a server without concurrency would run.
Input: random 320x240 photos, preprocessed once outside the timing, so only the network
is measured (its cost does not depend on what the pixels show).
"""

from __future__ import annotations

import argparse
import os
import threading
import time
from typing import Any

import numpy as np
from common import markdown_table, save

from lookalike.extractors import make_extractor

BATCHES = (1, 2, 4, 8)


def images_per_second(workers: int, intra: int, batch: int, seconds: float) -> float:
    extractor: Any = make_extractor("efficientnet-lite0", threads=intra).load()
    noise = np.random.default_rng(0)
    photos = [noise.integers(0, 256, (240, 320, 3), dtype=np.uint8) for _ in range(batch)]
    tensor = extractor.preprocessing(photos)
    extractor.run_outputs(tensor, ("features",))  # warm up
    done = [0] * workers
    deadline = time.perf_counter() + seconds

    def work(number: int) -> None:
        while time.perf_counter() < deadline:
            extractor.run_outputs(tensor, ("features",))
            done[number] += batch

    started = time.perf_counter()
    threads = [threading.Thread(target=work, args=(n,)) for n in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sum(done) / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args()
    cores = os.cpu_count() or 1
    plan = [(1, cores, 1)] + [(cores, 1, batch) for batch in BATCHES]
    rows = []
    for workers, intra, batch in plan:
        rate = images_per_second(workers, intra, batch, args.seconds)
        rows.append({"requests_at_once": workers, "threads_per_call": intra, "batch": batch,
                     "images_per_s": round(rate, 1)})
        print(rows[-1], flush=True)
    base = next(row["images_per_s"] for row in rows
                if row["threads_per_call"] == 1 and row["batch"] == 1)
    for row in rows:
        row["vs_shipped"] = round(row["images_per_s"] / base, 2)
    save("batching", {"model": "efficientnet-lite0", "seconds_per_row": args.seconds,
                      "cores": cores}, rows)
    print(markdown_table(rows, ["requests_at_once", "threads_per_call", "batch",
                                "images_per_s", "vs_shipped"]))


if __name__ == "__main__":
    main()
