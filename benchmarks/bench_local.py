"""Local channel (vocabulary tree + spatial verification): quality, speed and scaling.

    python benchmarks/bench_local.py quality [--data ../shared/data]
    python benchmarks/bench_local.py speed   [--data ../shared/data]
    python benchmarks/bench_local.py scaling [--data ../shared/data] [--sizes 1000,10000,100000]
    python benchmarks/bench_local.py knee    [--data ../shared/data] [--sides 1024,640,512,400,320]
                                             [--features 1500,1000,700,400] [--repeats 2]

quality: UKBench56 N-S and Oxford 1k-subset mAP (official query boxes), side by
side: the paper's configuration (SIFT, k=10, L=6, every node scored, L1,
entropy weights, no verification), RootSIFT, each scoring strategy, spatial
verification (affine and homography), query expansion, and the global CNN
channel. Vocabularies: Oxford's is trained on the Oxford subset itself (its
~700k descriptors); UKBench's 56 images are far too few to train a tree, so
UKBench is searched with the Oxford-trained tree, as papers train on another set.

variance: Oxford mAP with trees trained from several seeds (the subset has only 10
queries, and a tree trained on ~1M descriptors is one random draw).

speed: vocabulary training on 1M descriptors, descriptors quantised per second,
images indexed per second, and the share of SIFT in the indexing time.

scaling: tree search (quantise + inverted-file scoring) time and memory as the
database grows, with the real Oxford images plus synthetic distractor images
whose words are drawn from the real word frequencies.

knee: cheaper SIFT, a grid of image sizes (max_side) and keypoint caps
(max_features). Per setting, Oxford mAP (and Revisited Oxford medium where that
data set is registered) with a tree trained on the subset's own features at that
setting, UKBench N-S with that tree, and the SIFT speed on the same 200 images
(the 56 UKBench ones and the first 144 Oxford ones), one thread, every setting
timed in the same loop, as a ratio to today's setting (the machine is shared).
"""

from __future__ import annotations

import argparse
import resource
import time
from pathlib import Path
from typing import Any

import numpy as np
from common import DEFAULT_DATA, markdown_table, save

from lookalike import Collection, LocalChannelConfig
from lookalike.collection.local_records import RECORD, unpack
from lookalike.eval import DATASET_NAMES, evaluate
from lookalike.eval.datasets import load_oxford, load_ukbench
from lookalike.eval.settings import EvalSettings, default_collection_dir
from lookalike.images import load_image
from lookalike.local.features import SiftExtractor, import_cv2
from lookalike.local.inverted import InvertedIndex, ScoringConfig
from lookalike.local.tree import VocabularyTree

# (levels, min_level, largest size): every node from the root is slow past 10k images.
SCALING = [("leaves", 1, 10**9), ("all", 4, 10**9), ("all", 1, 50_000)]
PAPER = {"verify": 0, "levels": "all", "min_level": 1, "expand": 0}
VERIFIED = {"verify": 100, "levels": "all", "min_level": 1, "expand": 0}
EXPANDED = {"verify": 100, "levels": "all", "expand": 5}
VARIANTS: dict[str, tuple[str, dict[str, Any]]] = {
    # name: (features, search settings)
    "paper: SIFT, tree only": ("sift", PAPER),
    "paper + verification": ("sift", VERIFIED),
    "RootSIFT, tree only": ("rootsift", PAPER),
    "RootSIFT, leaves only": ("rootsift", {**PAPER, "levels": "leaves"}),
    "RootSIFT, nodes from level 4": ("rootsift", {**PAPER, "min_level": 4}),
    "RootSIFT, L2": ("rootsift", {**PAPER, "norm": "l2"}),
    "RootSIFT, no weighting": ("rootsift", {**PAPER, "weighting": "none"}),
    "RootSIFT, burstiness sqrt": ("rootsift", {**PAPER, "burstiness": "sqrt"}),
    "RootSIFT, stop list 1%": ("rootsift", {**PAPER, "stop_words": 0.01}),
    "RootSIFT + verification": ("rootsift", VERIFIED),
    "RootSIFT + verification, leaves only": ("rootsift", {**VERIFIED, "levels": "leaves"}),
    "RootSIFT + verification, homography": ("rootsift", {**VERIFIED,
                                                         "verify_model": "homography"}),
    "RootSIFT + verification + expansion": ("rootsift", {**VERIFIED, "expand": 5}),
    "RootSIFT + verification + expansion, from level 4": ("rootsift",
                                                          {**EXPANDED, "min_level": 4}),
    "RootSIFT + verification + expansion, leaves only (default)": ("rootsift", {}),
}


def oxford_tree(data: Path, features: str) -> Path:
    """Index the Oxford subset with the local channel (training its tree); the tree's file."""
    config = LocalChannelConfig(features=features)
    evaluate("oxford", data=data / "oxford5k_subset", channel="local", configs={"local": config})
    return oxford_collection(data, config) / "local" / "vocabulary.npz"


def oxford_collection(data: Path, config: LocalChannelConfig) -> Path:
    """The cached collection that ``evaluate("oxford", ...)`` builds with ``config``."""
    dataset = load_oxford(data / "oxford5k_subset")
    settings = EvalSettings(channel="local", configs={"local": config})
    return default_collection_dir(dataset.name, dataset.database, settings)


def quality(data: Path) -> None:
    trees = {features: oxford_tree(data, features) for features in ("sift", "rootsift")}
    rows: list[dict[str, Any]] = []
    for name, (features, search) in VARIANTS.items():
        row: dict[str, Any] = {"configuration": name}
        for dataset, folder, vocabulary in (
                ("oxford", "oxford5k_subset", None),
                ("ukbench", "ukbench56", str(trees[features]))):
            config = LocalChannelConfig(features=features, vocabulary=vocabulary, **search)
            report = evaluate(dataset, data=data / folder, channel="local",
                configs={"local": config})
            key = "oxford" if dataset == "oxford" else "ukbench"
            row[f"{key}_map"] = report["map"]
            row[f"{key}_query_ms"] = report["query_ms_p50"]
            if dataset == "ukbench":
                row["ukbench_ns"] = report["ns_score"]
            else:
                row["index_images_per_s"] = report["index_images_per_s"]
        rows.append(row)
        print(row, flush=True)
    for channel in ("global", "auto"):
        row = {"configuration": f"{channel} channel (EfficientNet-Lite0"
                                f"{' + RootSIFT, RRF' if channel == 'auto' else ''})"}
        oxford = evaluate("oxford", data=data / "oxford5k_subset", channel=channel)
        ukbench = evaluate("ukbench", data=data / "ukbench56", channel=channel,
            configs={"local": LocalChannelConfig(vocabulary=str(trees["rootsift"]))})
        row.update(oxford_map=oxford["map"], oxford_query_ms=oxford["query_ms_p50"],
                   ukbench_map=ukbench["map"], ukbench_ns=ukbench["ns_score"],
                   ukbench_query_ms=ukbench["query_ms_p50"])
        rows.append(row)
        print(row, flush=True)
    columns = ["configuration", "oxford_map", "ukbench_ns", "ukbench_map", "oxford_query_ms",
               "ukbench_query_ms"]
    print(markdown_table(rows, columns))
    path = save("local_quality", {
        "oxford": "1,008-image subset, 10 official queries with their boxes; tree trained on it",
        "ukbench": "56 images; tree trained on the Oxford subset (same feature kind)",
        "tree": "k=10, L=6, min_split=40, up to 1M training descriptors",
        "features": "max 1500 keypoints, longer side <= 1024 px",
        "verification": "top 100, RANSAC affine, 8 px, >= 8 inliers, pairs share the node two "
                        "levels above the leaf (not above level 3); expansion: mean of the "
                        "query and its 5 best verified images",
    }, rows)
    print(f"saved {path}")


def variance(data: Path, seeds: list[int]) -> None:
    """Oxford mAP with trees trained from other seeds: how much of a difference is the tree."""
    configurations = {name: VARIANTS[name] for name in (
        "paper: SIFT, tree only", "paper + verification", "RootSIFT, tree only",
        "RootSIFT + verification", "RootSIFT + verification + expansion, from level 4",
        "RootSIFT + verification + expansion, leaves only (default)")}
    rows = []
    for seed in seeds:
        for name, (features, search) in configurations.items():
            config = LocalChannelConfig(features=features, seed=seed, **search)
            report = evaluate("oxford", data=data / "oxford5k_subset", channel="local",
                configs={"local": config})
            rows.append({"seed": seed, "configuration": name, "oxford_map": report["map"]})
            print(rows[-1], flush=True)
    summary = []
    for name in configurations:
        values = [row["oxford_map"] for row in rows if row["configuration"] == name]
        summary.append({"configuration": name, "mean": float(np.mean(values)),
                        "std": float(np.std(values)), "min": min(values), "max": max(values)})
    print(markdown_table(summary, ["configuration", "mean", "std", "min", "max"]))
    path = save("local_variance", {"seeds": seeds, "dataset": "Oxford 1k subset, box queries",
                                   "tree": "trained on the subset itself, per seed"},
                rows + summary)
    print(f"saved {path}")


def speed(data: Path) -> None:
    dataset = load_oxford(data / "oxford5k_subset")
    files = sorted(dataset.database)
    sift = SiftExtractor("rootsift")
    rows: list[dict[str, Any]] = []
    descriptors, decode_s, sift_s = [], 0.0, 0.0
    for path in files[:200]:
        started = time.perf_counter()
        image = load_image(path, min_side=1024)
        decode_s += time.perf_counter() - started
        started = time.perf_counter()
        descriptors.append(sift.extract(image).descriptors)
        sift_s += time.perf_counter() - started
    sample = np.concatenate(descriptors)
    per_image = len(sample) / 200
    # Training: 1M descriptors, drawn from all Oxford images' features (cycled if fewer).
    everything = _oxford_descriptors(data)
    training = everything[np.random.default_rng(0).choice(len(everything), 1_000_000,
                                                          replace=len(everything) < 1_000_000)]
    tree, stats = VocabularyTree.train(training, features="rootsift")
    started = time.perf_counter()
    tree.quantize(sample)
    quantize_s = time.perf_counter() - started
    rows.append({
        "descriptors_trained": stats.descriptors, "train_seconds": stats.seconds,
        "nodes": stats.nodes, "leaves": stats.leaves, "tree_mb": tree.memory_bytes() / 1e6,
        "quantize_descriptors_per_s": len(sample) / quantize_s,
        "descriptors_per_image": per_image,
        "decode_ms_per_image": 1000 * decode_s / 200, "sift_ms_per_image": 1000 * sift_s / 200,
        "quantize_ms_per_image": 1000 * quantize_s / 200,
        "sift_share_of_extraction": sift_s / (sift_s + quantize_s + decode_s),
    })
    rows[0].update(_index_throughput(data, tree))
    print(rows[0])
    path = save("local_speed", {
        "oxford_descriptors_available": len(everything),
        "timing_images": "first 200 Oxford-subset images, one thread",
        "index": "whole Oxford subset through Collection.index, tree given (no training)",
    }, rows)
    print(f"saved {path}")


def _oxford_descriptors(data: Path) -> np.ndarray:
    sift = SiftExtractor("rootsift")
    files = sorted(load_oxford(data / "oxford5k_subset").database)
    return np.concatenate([sift.extract(load_image(path, min_side=1024)).descriptors
                           for path in files])


def _index_throughput(data: Path, tree: VocabularyTree) -> dict[str, Any]:
    import tempfile

    with tempfile.TemporaryDirectory() as scratch:
        tree_file = Path(scratch) / "tree.npz"
        tree.save(tree_file)
        config = LocalChannelConfig(vocabulary=str(tree_file))
        collection = Collection(Path(scratch) / "c", channels=["local"], configs={"local": config})
        with collection:
            report = collection.index([data / "oxford5k_subset" / "jpg"])
            stats = collection.info()["channels"]["local"]
        return {"index_images_per_s": report.images_per_s,
                "index_stage_seconds": report.stage_seconds,
                "bytes_per_image": stats["bytes_per_image"],
                "features_per_image": stats["features_stored"] / max(stats["vectors"], 1)}


def scaling(data: Path, sizes: list[int]) -> None:
    dataset = load_oxford(data / "oxford5k_subset")
    settings = EvalSettings(channel="local", configs={"local": LocalChannelConfig()})
    root = default_collection_dir(dataset.name, dataset.database, settings)
    with Collection(root).open(create=False) as collection:
        local = collection.channels["local"]
        tree = local.tree  # type: ignore[attr-defined]
        vectors = collection.catalog.vectors
        blobs = vectors.blobs(vectors.ids("local")[0].tolist())
        real = [unpack(blob).words for _, _, blob in blobs]
        sift = local.sift  # type: ignore[attr-defined]
        queries = [sift.extract(load_image(q.path)).inside(q.box).descriptors
                   for q in dataset.queries if q.box is not None]
    pool = np.concatenate(real)
    rng = np.random.default_rng(0)
    rows = []
    for levels, min_level, largest in SCALING:
        scoring = ScoringConfig(levels=levels, min_level=min_level)
        index = InvertedIndex(tree.n_nodes, scoring, tree=tree)
        for image, words in enumerate(real):
            index.add(image, words)
        size = len(real)
        for target in [size for size in sizes if size <= largest]:
            while size < target:
                length = len(real[size % len(real)])
                index.add(size, pool[rng.integers(0, len(pool), length)])
                size += 1
            started = time.perf_counter()
            index.search(np.empty(0, np.int64), 1)  # builds the postings
            build_s = time.perf_counter() - started
            quantize, score = [], []
            for repeat in range(3):
                for descriptors in queries:
                    started = time.perf_counter()
                    words = tree.quantize(descriptors)
                    middle = time.perf_counter()
                    index.search(words, 100)
                    if repeat:  # the first pass warms caches
                        quantize.append(middle - started)
                        score.append(time.perf_counter() - middle)
            row = {"levels": levels, "min_level": min_level, "images": size,
                   "quantize_ms": 1000 * float(np.median(quantize)),
                   "score_ms": 1000 * float(np.median(score)),
                   "tree_search_ms": 1000 * float(np.median(np.add(quantize, score))),
                   "index_mb": index.memory_bytes() / 1e6,
                   "bytes_per_image": index.memory_bytes() / size,
                   "build_seconds": build_s,
                   "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e3}
            rows.append(row)
            print(row, flush=True)
        del index
    print(markdown_table(rows, ["levels", "min_level", "images", "quantize_ms", "score_ms",
                                "tree_search_ms", "index_mb", "bytes_per_image",
                                "build_seconds"]))
    path = save("local_scaling", {
        "real_images": len(real), "queries": len(queries),
        "distractors": "word lists of real lengths, words drawn from the real word frequencies",
        "tree": {"nodes": tree.n_nodes, "leaves": int(tree.is_leaf.sum())},
        "timing": "median over 2 passes of the 10 Oxford box queries; SIFT and verification "
                  "excluded (they do not depend on the database size)",
    }, rows)
    print(f"saved {path}")


KNEE_TODAY = (1024, 1500)  # (max_side, max_features): LocalChannelConfig's defaults
KNEE_TIMING_OXFORD = 144  # with UKBench's 56: 200 timing images


def knee(data: Path, sides: list[int], caps: list[int], repeats: int) -> None:
    """Quality and SIFT speed over a grid of (max_side, max_features), to find the knee."""
    grid = [(side, cap) for side in sides for cap in caps]
    if KNEE_TODAY not in grid:
        raise SystemExit(f"the grid must hold today's setting {KNEE_TODAY} to give ratios")
    timing = _knee_timing(data, grid, repeats)
    largest = _largest_side(load_oxford(data / "oxford5k_subset").database)
    oxford: dict[tuple[int | None, int], dict[str, Any]] = {}
    rows: list[dict[str, Any]] = []
    for side, cap in grid:
        # Oxford images are no larger than `largest`: every max_side >= it sees the same
        # pixels, hence the same features, tree and mAP; those settings share one run.
        key = (side if side < largest else None, cap)
        if key not in oxford:
            oxford[key] = _knee_oxford(data, LocalChannelConfig(max_side=side, max_features=cap))
        row = {"max_side": side, "max_features": cap, **oxford[key]}
        config = LocalChannelConfig(max_side=side, max_features=cap, vocabulary=row["tree"])
        ukbench = evaluate("ukbench", data=data / "ukbench56", channel="local",
                           configs={"local": config})
        row.update(ukbench_ns=ukbench["ns_score"], ukbench_map=ukbench["map"],
                   ukbench_query_ms=ukbench["query_ms_p50"], **timing[(side, cap)])
        rows.append(row)
        print(row, flush=True)
    print(markdown_table(rows, ["max_side", "max_features", "oxford_map", "roxford_medium_map",
                                "ukbench_ns", "sift_images_per_s", "speed_vs_today",
                                "cpu_speed_vs_today", "ukbench_sift_ms", "oxford_sift_ms",
                                "ukbench_speed_vs_today", "keypoints_per_image",
                                "stored_bytes_per_image", "oxford_query_ms",
                                "ukbench_query_ms"]))
    path = save("local_knee", {
        "grid": {"max_side": sides, "max_features": caps}, "today": list(KNEE_TODAY),
        "features": "rootsift", "search": "LocalChannelConfig defaults (leaves, verification "
                  "of the top 100, expansion 5)",
        "oxford": f"1,008-image subset (longest side {largest} px), official box queries; tree "
                  "k=10, L=6 trained on the subset's own features at each setting (settings "
                  f"with max_side >= {largest} see identical Oxford pixels and share one run)",
        "roxford_medium": "same collection, Revisited Oxford medium lists"
                          if "roxford-medium" in DATASET_NAMES else "not registered: skipped",
        "ukbench": "56 images (640x480), searched with that setting's Oxford-trained tree",
        "timing": f"SIFT extraction (grey, resize, detect, describe, RootSIFT) of the 56 UKBench "
                  f"and first {KNEE_TIMING_OXFORD} Oxford images, decoded beforehand, "
                  f"cv2.setNumThreads(1); {repeats} passes, every setting interleaved per image "
                  "in a rotating order; speed_vs_today = today's wall time / this setting's, "
                  "cpu_speed_vs_today the same with thread CPU time; ukbench_speed_vs_today on the "
                  "56 640x480 photos alone (the Oxford ones are at most 512 px)",
        "stored_bytes_per_image": f"4 + {RECORD.itemsize} x keypoints (the local channel's "
                                  "record), mean over the 200 timing images",
    }, rows)
    print(f"saved {path}")


def _knee_oxford(data: Path, config: LocalChannelConfig) -> dict[str, Any]:
    """Oxford (and Revisited Oxford medium) with a tree trained on the subset at ``config``."""
    oxford = evaluate("oxford", data=data / "oxford5k_subset", channel="local",
                      configs={"local": config})
    root = oxford_collection(data, config)
    found: dict[str, Any] = {"oxford_map": oxford["map"],
                             "oxford_query_ms": oxford["query_ms_p50"],
                             "tree": str(root / "local" / "vocabulary.npz")}
    if "roxford-medium" in DATASET_NAMES:
        # Same database: the Oxford collection (and its tree) serves it as it is.
        revisited = evaluate("roxford-medium", data=data / "oxford5k_subset", channel="local",
                             configs={"local": config}, collection=root)
        found["roxford_medium_map"] = revisited["map"]
    return found


def _largest_side(files: tuple[Path, ...]) -> int:
    from PIL import Image

    largest = 0
    for path in files:
        with Image.open(path) as image:
            largest = max(largest, *image.size)
    return largest


def _knee_timing(data: Path, grid: list[tuple[int, int]],
                 repeats: int) -> dict[tuple[int, int], dict[str, float]]:
    """SIFT time and keypoints per setting, all settings timed in one loop over the images."""
    ukbench = list(load_ukbench(data / "ukbench56").database)
    oxford = sorted(load_oxford(data / "oxford5k_subset").database)[:KNEE_TIMING_OXFORD]
    images = [load_image(path) for path in ukbench + oxford]
    extractors = {setting: SiftExtractor("rootsift", setting[1], setting[0])
                  for setting in grid}
    wall, cpu, keypoints = _time_sift(images, extractors, repeats)
    photos = slice(0, len(ukbench))  # 640x480: every max_side below 640 shrinks them
    rows = {}
    for setting in grid:
        today, this, cpu_today, cpu_this = (wall[KNEE_TODAY], wall[setting], cpu[KNEE_TODAY],
                                            cpu[setting])
        found = {
            "sift_images_per_s": repeats * len(images) / this.sum(),
            "sift_ms_per_image": 1000 * this.mean() / repeats,
            "speed_vs_today": today.sum() / this.sum(),
            "cpu_speed_vs_today": cpu_today.sum() / cpu_this.sum(),
            "ukbench_sift_ms": 1000 * this[photos].mean() / repeats,
            "oxford_sift_ms": 1000 * this[len(ukbench):].mean() / repeats,
            "ukbench_speed_vs_today": today[photos].sum() / this[photos].sum(),
            "keypoints_per_image": keypoints[setting].mean(),
            "ukbench_keypoints_per_image": keypoints[setting][photos].mean(),
            "oxford_keypoints_per_image": keypoints[setting][len(ukbench):].mean(),
            "stored_bytes_per_image": 4 + RECORD.itemsize * keypoints[setting].mean(),
        }
        rows[setting] = {key: float(value) for key, value in found.items()}
    return rows


Timings = dict[tuple[int, int], np.ndarray]


def _time_sift(images: list[np.ndarray], extractors: dict[tuple[int, int], SiftExtractor],
               repeats: int) -> tuple[Timings, Timings, Timings]:
    """Per setting and image: wall seconds, thread CPU seconds (both summed over the
    passes) and keypoints, with OpenCV on one thread."""
    wall = {setting: np.zeros(len(images)) for setting in extractors}
    cpu = {setting: np.zeros(len(images)) for setting in extractors}
    keypoints = {setting: np.zeros(len(images), np.int64) for setting in extractors}
    settings = list(extractors)
    cv2 = import_cv2()
    threads = cv2.getNumThreads()
    cv2.setNumThreads(1)
    try:
        for extractor in extractors.values():
            extractor.extract(images[0])  # creates the detector outside the timing
        for step in range(repeats * len(images)):
            index = step % len(images)
            # A rotating order, so that no setting always runs first (or after the largest).
            shift = step % len(settings)
            for setting in settings[shift:] + settings[:shift]:
                started, started_cpu = time.perf_counter(), time.thread_time()
                found = extractors[setting].extract(images[index])
                wall[setting][index] += time.perf_counter() - started
                cpu[setting][index] += time.thread_time() - started_cpu
                keypoints[setting][index] = len(found)
    finally:
        cv2.setNumThreads(threads)
    return wall, cpu, keypoints


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("part", choices=["quality", "speed", "scaling", "variance", "knee"])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--sizes", default="1000,10000,50000,100000")
    parser.add_argument("--seeds", default="0,1,2", help="variance: tree seeds")
    parser.add_argument("--sides", default="1024,640,512,400,320", help="knee: max_side values")
    parser.add_argument("--features", default="1500,1000,700,400",
                        help="knee: max_features values")
    parser.add_argument("--repeats", type=int, default=2, help="knee: timing passes")
    args = parser.parse_args()
    if args.part == "quality":
        quality(args.data)
    elif args.part == "speed":
        speed(args.data)
    elif args.part == "variance":
        variance(args.data, [int(seed) for seed in args.seeds.split(",")])
    elif args.part == "knee":
        knee(args.data, [int(side) for side in args.sides.split(",")],
             [int(cap) for cap in args.features.split(",")], args.repeats)
    else:
        scaling(args.data, [int(size) for size in args.sizes.split(",")])


if __name__ == "__main__":
    main()
