"""Exact objects photographed by phones: planar covers against clean references.

    python benchmarks/bench_planar.py --smvs DIR [--data ../shared/data] [--work DIR]
                                      [--variants default,features4000,...]

The set: one category of the Stanford Mobile Visual Search data set (Chandrasekhar et al.,
MMSys 2011; e.g. ``dvd_covers``: ``Reference/NNN.jpg`` and four cameras' photos
``Canon|Droid|E63|Palm/NNN.jpg`` of the same NNN), the photos shrunk to 640 px on their
longer side as a phone app would send them. The database: the 100 references plus the
1,008 Oxford photos as distractors. Every photo queries the local channel; the right
reference must come first (top-1) or in the first ten (recall@10). Failures are counted per
camera, and each variant's indexing speed and query time are measured in the same run.

A variant changes what is stored (keypoints: a new collection, indexed again) or only how
it is searched (the same collection opened with other search settings).

``--before REV`` also measures each variant with the code of another commit (checked out
into a temporary worktree), each code in its own fresh process, alternating ``--rounds``
times, so that both codes' query times share the machine's state; the table then gives
each code's median p50 and their ratio.

    python benchmarks/bench_planar.py --smvs DIR --variants "default: ..." --before 42ab316
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from bench_profile import worktree
from common import DEFAULT_DATA, ROOT, json_in_process, markdown_table, save
from PIL import Image

from lookalike import Collection, LocalChannelConfig

CAMERAS = ("Canon", "Droid", "E63", "Palm")
QUERY_SIDE = 640
#: name -> (stored settings, search settings)
HISTOGRAMS = {"vote_bits": 0}  # tree scores from word histograms, as before issue 18's votes
VARIANTS: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
    "before: pair 2 levels up": ({}, {**HISTOGRAMS, "hamming": False, "match_up": 2,
                                      "match_retry": 0}),
    "pair 1 level up": ({}, {**HISTOGRAMS, "hamming": False, "match_up": 1, "match_retry": 0}),
    "pair 1 level up, then 2": ({}, {**HISTOGRAMS, "hamming": False}),
    "Hamming pairing": ({}, HISTOGRAMS),
    "Hamming pairing, verify 300": ({}, {**HISTOGRAMS, "verify": 300}),
    "Hamming pairing, homography": ({}, {**HISTOGRAMS, "verify_model": "homography"}),
    "Hamming pairing, 4000 keypoints": ({"max_features": 4000}, HISTOGRAMS),
    "default: Hamming pairing and votes": ({}, {}),
    "votes, verify 50": ({}, {"verify": 50}),
    "votes, query at 640 px (before)": ({}, {"query_side": 640}),
    "votes, query at 560 px": ({}, {"query_side": 560}),
    "votes, query at 400 px": ({}, {"query_side": 400}),
    "generic vocabulary, histograms": ({"vocabulary": "generic"}, HISTOGRAMS),
    "generic vocabulary, votes": ({"vocabulary": "generic"}, {}),
}


def prepare(smvs: Path, distractors: Path, work: Path) -> tuple[Path, dict[Path, Path]]:
    """The database folder and {query photo: its reference}, made once under ``work``."""
    database, queries = work / "db", work / "queries"
    if not (database / "refs").is_dir():
        shutil.copytree(smvs / "Reference", database / "refs")
        shutil.copytree(distractors, database / "distractors")
    truth = {}
    for camera in CAMERAS:
        for photo in sorted((smvs / camera).glob("*.jpg")):
            small = queries / camera / photo.name
            if not small.exists():
                small.parent.mkdir(parents=True, exist_ok=True)
                with Image.open(photo) as opened:
                    image = opened.convert("RGB")
                image.thumbnail((QUERY_SIDE, QUERY_SIDE), Image.Resampling.LANCZOS)
                image.save(small, quality=90)
            truth[small] = database / "refs" / photo.name
    return database, truth


def built(work: Path, database: Path, stored: dict[str, Any]) -> tuple[Path, float]:
    """The collection with these stored settings (indexed once), and its images per second
    (0 when it was indexed by an earlier run)."""
    name = "-".join(f"{key}{value}" for key, value in sorted(stored.items())) or "default"
    root = work / f"collection-{name}"
    if (root / "manifest.json").exists():
        return root, 0.0
    started = time.perf_counter()
    with Collection(root, channels=["local"],
                    configs={"local": LocalChannelConfig(**stored)}).open() as collection:
        report = collection.index([database])
    return root, report.added / (time.perf_counter() - started)


def scored(found: Sequence[Sequence[Path]], truth: Mapping[Path, Path]) -> dict[str, Any]:
    """Top-1, recall@10 and failures per camera, from each query's first ten results
    (resolved paths), in the order of ``truth``."""
    failures = {camera: 0 for camera in CAMERAS}
    misses10 = 0
    for first, (query, reference) in zip(found, truth.items(), strict=True):
        if not first or first[0] != reference.resolve():
            failures[query.parent.name] += 1
        misses10 += reference.resolve() not in first[:10]
    total = len(truth)
    return {"top1": 1 - sum(failures.values()) / total, "recall_at_10": 1 - misses10 / total,
            **{f"fail_{camera}": count for camera, count in failures.items()}}


def measure(root: Path, stored: dict[str, Any], search: dict[str, Any],
            truth: dict[Path, Path]) -> dict[str, Any]:
    """Top-1, recall@10, failures per camera and query times of one variant."""
    found, seconds = [], []
    config = LocalChannelConfig(**stored, **search)
    with Collection(root, configs={"local": config}).open(create=False) as collection:
        collection.search(next(iter(truth)), k=10, channel="local")  # warm caches
        for query in truth:
            started = time.perf_counter()
            results = collection.search(query, k=10, channel="local")
            seconds.append(time.perf_counter() - started)
            found.append([Path(result.path).resolve() for result in results])
        memory = collection.info()["channels"]["local"]["index_memory_bytes"]
    return {**scored(found, truth),
            "query_ms_p50": 1000 * statistics.median(seconds),
            "query_ms_p90": 1000 * sorted(seconds)[int(0.9 * len(truth))],
            "index_mib": None if memory is None else round(memory / 2**20, 1)}


def sift_reference_ms() -> float:
    """The machine's speed today: median ms of OpenCV's SIFT on one fixed 640x480 image.
    This VM's speed varies between sessions (stop 28's code took 155 ms a query in one and
    85 in another), so query times compare across runs only through this."""
    import numpy as np

    from lookalike.local.features import import_cv2

    cv2 = import_cv2()
    noise = np.random.default_rng(0).integers(0, 256, (480, 640), dtype=np.uint8)
    image = cv2.GaussianBlur(noise, (0, 0), 2.0)
    sift = cv2.SIFT_create(nfeatures=1500)
    times = []
    for _ in range(15):
        started = time.perf_counter()
        sift.detectAndCompute(image, None)
        times.append(1000 * (time.perf_counter() - started))
    return round(statistics.median(times), 2)


def in_process(code: Path, args: argparse.Namespace, variant: str) -> dict[str, Any]:
    """:func:`measure` of one variant in a fresh interpreter importing Lookalike from
    ``code``."""
    return json_in_process(code, [__file__, *planar_arguments(args), "--measure", variant],
                           variant)


def side_by_side(args: argparse.Namespace, before: Path, variant: str) -> dict[str, Any]:
    """This code and ``before``, alternating ``args.rounds`` times: quality from this
    code's first round, each code's median p50 and their ratio."""
    runs: dict[str, list[dict[str, Any]]] = {"now": [], "before": []}
    for _ in range(args.rounds):
        runs["now"].append(in_process(ROOT, args, variant))
        runs["before"].append(in_process(before, args, variant))
    now, then = (statistics.median(run["query_ms_p50"] for run in runs[code])
                 for code in ("now", "before"))
    return {**runs["now"][0], "query_ms_p50": now, "before_query_ms_p50": then,
            "before_top1": runs["before"][0]["top1"], "p50_ratio": round(now / then, 3),
            "before_index_mib": runs["before"][0].get("index_mib"),
            "p50_runs": [run["query_ms_p50"] for run in runs["now"]],
            "before_p50_runs": [run["query_ms_p50"] for run in runs["before"]]}


def planar_options(parser: argparse.ArgumentParser) -> None:
    """The set's options, shared with ``bench_planar_fusion.py``."""
    parser.add_argument("--smvs", type=Path, required=True,
                        help="an SMVS category folder (Reference/ and the camera folders)")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--work", type=Path, default=Path("/tmp/lookalike-planar"))


def planar_arguments(args: argparse.Namespace) -> list[str]:
    return ["--smvs", str(args.smvs), "--data", str(args.data), "--work", str(args.work)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    planar_options(parser)
    parser.add_argument("--variants", default=";".join(VARIANTS), help="';'-separated")
    parser.add_argument("--name", default="planar", help="results/<name>.json")
    parser.add_argument("--before", help="a commit whose code is measured beside this one")
    parser.add_argument("--rounds", type=int, default=3, help="alternations with --before")
    parser.add_argument("--measure", help=argparse.SUPPRESS)  # one variant, JSON out
    args = parser.parse_args()
    database, truth = prepare(args.smvs, args.data / "oxford5k_subset" / "jpg", args.work)
    if args.measure:
        stored, search = VARIANTS[args.measure]
        print(json.dumps(measure(built(args.work, database, stored)[0], stored, search, truth)))
        return
    before = worktree(args.before) if args.before else None
    rows = []
    try:
        for name in args.variants.split(";"):
            stored, search = VARIANTS[name]
            root, speed = built(args.work, database, stored)
            found = (side_by_side(args, before, name) if before is not None
                     else measure(root, stored, search, truth))
            row = {"variant": name, **found, "index_img_per_s": speed or None}
            print(row, flush=True)
            rows.append(row)
    finally:
        if before is not None:
            subprocess.run(["git", "worktree", "remove", "--force", str(before)], cwd=ROOT,
                           check=False, capture_output=True)
    columns = ["variant", "top1", "recall_at_10", *(f"fail_{c}" for c in CAMERAS),
               "query_ms_p50", "query_ms_p90", "index_mib", "index_img_per_s"]
    if before is not None:
        columns += ["before_top1", "before_query_ms_p50", "p50_ratio", "before_index_mib"]
    print(markdown_table(rows, columns))
    save(args.name, {"set": str(args.smvs), "queries": len(truth), "query_side": QUERY_SIDE,
                     "sift_reference_ms": sift_reference_ms(),
                     "database": "100 references + 1,008 Oxford distractors",
                     "before": args.before, "rounds": args.rounds if args.before else None,
                     "variants": {name: VARIANTS[name] for name in args.variants.split(";")}},
         rows)


if __name__ == "__main__":
    main()
