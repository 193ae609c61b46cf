"""kill -9 at random moments of indexing, the vocabulary tree's training included.

    python benchmarks/bench_kill.py [--runs 100] [--images 48] [--seed 0]

Each run indexes a folder of textured scenes into a global + local collection in a
child process (the global model slowed down, so that batches take a while) and kills it
with SIGKILL at a random moment: while it loads, while the global channel commits
its first pass, while the tree trains, or while the second pass gives the local channel
its words. Then it checks what the kill left, as a user would find it:

* the catalog opens and passes ``PRAGMA integrity_check``;
* nothing committed before the kill is lost (the images counted just before the kill are
  all there) and nothing is duplicated (one row per path);
* every image the catalog says went through a channel has that channel's rows (words for
  the local channel, a vector for the global one), and the tree it names is on disk;
* the next run finishes the work: every image through every channel, the local channel
  finding a scene by another view of it.

Prints a table of where the kills landed and how many runs passed, and saves
``results/kill.json``. The test suite runs a few of these kills (tests/test_writers.py);
this is the long loop.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import textwrap
import time
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
from common import save
from PIL import Image

CHILD = textwrap.dedent(
    """
    import sys, time
    from lookalike import Collection, GlobalChannelConfig, LocalChannelConfig
    from lookalike.extractors.thumbnail import ThumbnailExtractor
    from lookalike.collection import LocalChannel

    class Slow(ThumbnailExtractor):
        def _embed(self, images):
            time.sleep(0.03 * len(images))
            return super()._embed(images)

    train = LocalChannel.train
    def noted(self, images, count):  # tells the parent where the kill may land
        open(sys.argv[3], "w").write("training")
        train(self, images, count)
        open(sys.argv[3], "w").write("second pass")
    LocalChannel.train = noted
    configs = {"global": GlobalChannelConfig(extractor="thumbnail"),
               "local": LocalChannelConfig(max_features=300, branching=6, depth=4)}
    collection = Collection(sys.argv[1], configs=configs, batch_size=4, wait=None).open()
    collection.channels["global"].extractor = Slow()
    collection.index([sys.argv[2]])
    collection.close()
    """
)


def textured(seed: int, shift: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    image = rng.integers(0, 60, (240, 340, 3), dtype=np.uint8)
    for _ in range(40):
        x, y = rng.integers(0, 300), rng.integers(0, 200)
        w, h = rng.integers(10, 40), rng.integers(10, 40)
        image[y:y + h, x:x + w] = rng.integers(80, 255, 3)
    return np.ascontiguousarray(image[:, shift:shift + 320])


def committed(catalog: Path) -> int:
    try:
        with sqlite3.connect(f"file:{catalog}?mode=ro", uri=True, timeout=5) as conn:
            return int(conn.execute("SELECT COUNT(*) FROM images").fetchone()[0])
    except sqlite3.Error:
        return 0


def one_run(folder: Path, root: Path, delay: float) -> dict[str, Any]:
    """Kill the child ``delay`` seconds in; the checks' findings."""
    stage = root.parent / "stage.txt"
    stage.write_text("first pass")
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(root), str(folder), str(stage)],
                             stderr=subprocess.PIPE, env={**os.environ})
    time.sleep(delay)
    before = committed(root / "catalog.sqlite")
    finished = child.poll() is not None
    child.send_signal(signal.SIGKILL)
    child.wait()
    where = "finished" if finished else stage.read_text()
    return {"delay_s": round(delay, 2), "stage": where, "committed_before_kill": before,
            **check(root, before)}


def check(root: Path, before: int) -> dict[str, Any]:
    """What the kill left, then whether the next run finishes the work."""
    problems: list[str] = []
    if not (root / "catalog.sqlite").exists():
        return {"ok": before == 0, "problems": [] if before == 0 else ["catalog gone"]}
    with sqlite3.connect(root / "catalog.sqlite") as conn:
        if conn.execute("PRAGMA integrity_check").fetchone()[0] != "ok":
            problems.append("integrity_check failed")
        images = conn.execute("SELECT COUNT(*), COUNT(DISTINCT path) FROM images").fetchone()
        if images[0] < before:
            problems.append(f"lost images: {before} committed, {images[0]} found")
        if images[0] != images[1]:
            problems.append("duplicated paths")
        problems += _marks_without_rows(conn)
        tree = conn.execute("SELECT value FROM meta WHERE key = 'local.vocabulary_id'").fetchone()
    if tree is not None and not (root / "local" / "vocabulary.npz").exists():
        problems.append("the catalog names a tree that is not on disk")
    problems += _resume(root)
    return {"ok": not problems, "problems": problems}


def _marks_without_rows(conn: sqlite3.Connection) -> list[str]:
    """Channels marked done whose rows are not there (global: a vector; local: words, unless
    the image had no keypoints, which a scene here always has)."""
    found = []
    for channel in ("global", "local"):
        orphans = conn.execute(
            "SELECT COUNT(*) FROM image_channels m WHERE m.channel = ? AND NOT EXISTS "
            "(SELECT 1 FROM vectors v WHERE v.image_id = m.image_id AND v.channel = ?)",
            (channel, channel)).fetchone()[0]
        if orphans:
            found.append(f"{orphans} images marked through '{channel}' without its rows")
    return found


def _resume(root: Path) -> list[str]:
    from lookalike import Collection

    folder = root.parent / "scenes"
    with Collection(root, wait=None).open() as collection:
        report = collection.index([folder])
        info = collection.info()
        found = collection.search(textured(7, shift=12), k=1, channel="local")
    problems = [f"resume failed: {path}: {reason}" for path, reason in report.failures]
    if info["images"] != len(list(folder.iterdir())):
        problems.append(f"resume left {info['images']} images")
    if info["channels"]["local"]["vectors"] != info["images"]:
        problems.append("resume left images without words")
    if not found or not found[0].path.endswith("scene07.png"):
        problems.append("the local channel does not find a scene by another view")
    return problems


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=100)
    parser.add_argument("--images", type=int, default=48)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    chooser = random.Random(args.seed)
    work = Path(tempfile.mkdtemp(prefix="lookalike-kill-"))
    folder = work / "scenes"
    folder.mkdir()
    for seed in range(args.images):
        Image.fromarray(textured(seed)).save(folder / f"scene{seed:02d}.png")
    full = _full_run_seconds(work, folder)
    rows = []
    for run in range(args.runs):
        root = work / "c"
        shutil.rmtree(root, ignore_errors=True)
        rows.append({"run": run, **one_run(folder, root, chooser.uniform(0.0, full))})
        print(rows[-1], flush=True)
    shutil.rmtree(work, ignore_errors=True)
    passed = sum(row["ok"] for row in rows)
    stages = Counter(row["stage"] for row in rows)
    print(f"\n{passed} / {len(rows)} runs kept everything committed and finished on resume; "
          f"kills by stage: {dict(stages)}; one full run takes {full:.1f} s")
    save("kill", {"runs": args.runs, "images": args.images, "seed": args.seed,
                  "full_run_s": round(full, 2), "passed": passed, "stages": dict(stages)}, rows)


def _full_run_seconds(work: Path, folder: Path) -> float:
    """How long an unkilled run takes, so the kills spread over all of it."""
    root = work / "timing"
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", CHILD, str(root), str(folder),
                           str(work / "timing-stage.txt")], capture_output=True, check=False)
    if done.returncode != 0:
        raise SystemExit(done.stderr.decode())
    shutil.rmtree(root)
    return time.perf_counter() - started


if __name__ == "__main__":
    main()
