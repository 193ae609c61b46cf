"""Multi-clue search (issue 6): search by crop, text search, and fusion, measured.

    python benchmarks/bench_multiclue.py crop   [--data ../shared/data]
    python benchmarks/bench_multiclue.py text   [--fmnist DIR]
    python benchmarks/bench_multiclue.py fusion [--data ../shared/data] [--fmnist DIR]
    python benchmarks/bench_multiclue.py speed  [--data ../shared/data] [--images 200]
    python benchmarks/bench_multiclue.py regions [--data ../shared/data]
    python benchmarks/bench_multiclue.py projection [--data ../shared/data]

* ``crop``: Oxford 1k subset, each official query cropped to its box, against the whole-image
  channel (global), the regions channel, the local channel, text (the crop's own ImageNet
  labels) and every fusion, all from the same per-query channel rankings.
* ``text``: Fashion-MNIST (``benchmarks/fashion_mnist.py``, 100 test images per class) with
  only automatic labels (ImageNet classes and detected objects; the class names are not
  given to the engine). Each class name is a label query; a result is relevant when its
  class is the query's. BM25 alone, semantic (all-MiniLM-L6-v2) alone, and both fused.
* ``fusion``: the best single channel against RRF, weighted score fusion and the learned
  ranker on UKBench56, Oxford 1k and Fashion-MNIST (10 image queries per class). The
  learned ranker and the Platt calibration are trained on half the queries and scored on
  the other half, both ways; they never see the queries they are scored on.
* ``regions``: the regions channel alone on Oxford box crops and Revisited Oxford
  (medium): regions embedded crop by crop against pooled from one pass at several input
  sides, and with fewer kinds of region (whole 1,280-d vectors).
* ``projection``: the same, stored in fewer dimensions by a PCA learned on the collection
  after 100-1,000 images.
* ``speed``: indexing images/s with the regions and text channels beside the global one,
  as ratios to the global channel alone, in the same run.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageOps

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import DEFAULT_DATA, save
from fashion_mnist import CLASSES, export_fashion_mnist

from lookalike import Collection
from lookalike.collection import ChannelConfig, RegionsChannelConfig, TextChannelConfig
from lookalike.eval import evaluate
from lookalike.eval.metrics import average_precision
from lookalike.paths import cache_dir

METHODS = ("global", "local", "regions", "text", "auto", "auto-equal-votes", "rrf",
           "rrf-without-global",
           "rrf-without-local", "rrf-without-regions", "rrf-without-text", "weighted-minmax",
           "weighted-platt-cv", "learned-cv")
FMNIST_CHANNELS = ("global", "regions", "text")


def fmnist_folder(given: Path | None) -> Path:
    return export_fashion_mnist(given or cache_dir() / "bench" / "fmnist100", per_class=100)


def table(title: str, by_method: dict[str, dict[str, float]], keys: tuple[str, ...]) -> None:
    print(f"\n{title}")
    print(f"{'method':<20}" + "".join(f"{key:>14}" for key in keys))
    for method in METHODS:
        if method in by_method:
            row = by_method[method]
            print(f"{method:<20}" + "".join(f"{row.get(key, float('nan')):>14.4f}"
                                             for key in keys))


def run_crop(args: argparse.Namespace) -> None:
    report = evaluate("oxford", data=args.data / "oxford5k_subset", channel="auto")
    table("Oxford 1k subset, query = official box crop", report["by_method"],
          ("map", "top1", "recall_at_10"))
    save("multiclue_crop", {"dataset": "oxford5k_subset", "query": "box crop",
                            "channels": ["global", "local", "regions", "text"],
                            "regions": RegionsChannelConfig().stored_settings()},
         [{"method": name, **row} for name, row in report["by_method"].items()]
         + [{"method": "timing", "query_ms_p50": report["query_ms_p50"],
             "index_images_per_s": report["index_images_per_s"]}])


def run_regions(args: argparse.Namespace) -> None:
    """The regions channel alone on Oxford box crops and on Revisited Oxford (medium), each
    way of making region vectors: one pass of the network per cropped region (``crop``,
    as before issue 14) against pooling one pass's feature map at several input sides,
    and with fewer kinds of region. Each setup is indexed afresh, one after another, so
    the images/s are comparable; Revisited Oxford searches the same collection."""
    whole: dict[str, Any] = {"pca": None}  # the pooling choices were made on whole 1,280-d vectors
    setups = {"crop: objects + windows 2,3 (before)":
                  RegionsChannelConfig(pooling="crop", **whole),
              "GeM 224: objects + windows 2,3": RegionsChannelConfig(map_side=224, **whole),
              "GeM 256: objects + windows 2,3, 1280 dims": RegionsChannelConfig(**whole),
              "GeM 256: objects + windows 2,3, 1280 dims, float32 rows":
                  RegionsChannelConfig(storage="float32", **whole),
              "GeM 288: objects + windows 2,3": RegionsChannelConfig(map_side=288, **whole),
              "GeM 320: objects + windows 2,3": RegionsChannelConfig(map_side=320, **whole),
              "max 256: objects + windows 2,3": RegionsChannelConfig(pooling="max", **whole),
              "GeM 256: windows 2,3 only": RegionsChannelConfig(max_objects=0, **whole),
              "GeM 256: objects + windows 2": RegionsChannelConfig(grid_levels=(2,), **whole),
              "GeM 256: objects only": RegionsChannelConfig(grid_levels=(), **whole)}
    measure_regions(args, setups, "multiclue_regions")


def run_projection(args: argparse.Namespace) -> None:
    """The regions channel stored in fewer dimensions: a PCA learned on the collection's
    own regions once it holds ``pca_after`` images. The Oxford subset is indexed in path
    order, so a projection learned early has seen only the first landmarks (five of the
    eleven after 200 images): what a collection that grows folder by folder meets."""
    setups = {"GeM 256, 1280 dims (no projection)": RegionsChannelConfig(pca=None),
              "GeM 256, PCA 256 after 1000 images (default)": RegionsChannelConfig(),
              "GeM 256, PCA 256 after 100 images": RegionsChannelConfig(pca_after=100),
              "GeM 256, PCA 256 after 200 images": RegionsChannelConfig(pca_after=200),
              "GeM 256, PCA 256 after 500 images": RegionsChannelConfig(pca_after=500),
              "GeM 256, PCA 128 after 1000 images": RegionsChannelConfig(pca=128),
              "GeM 256, PCA 512 after 1000 images": RegionsChannelConfig(pca=512)}
    measure_regions(args, setups, "multiclue_regions_projection")


def measure_regions(args: argparse.Namespace, setups: dict[str, RegionsChannelConfig],
                    saved_as: str) -> None:
    """Oxford and Revisited Oxford (medium) for each setup, indexed afresh in turn."""
    import shutil
    import tempfile

    if args.setups:
        setups = {name: config for name, config in setups.items()
                  if any(word in name for word in args.setups.split(","))}
    data = args.data / "oxford5k_subset"
    rows = []
    for name, config in setups.items():
        folder = Path(tempfile.mkdtemp(prefix="lookalike-regions-"))
        try:
            oxford = evaluate("oxford", data=data, channel="regions",
                              configs={"regions": config}, collection=folder / "c")
            medium = evaluate("roxford-medium", data=data, channel="regions",
                              configs={"regions": config}, collection=folder / "c")
            with Collection(folder / "c").open(create=False) as collection:
                stats = collection.info()["channels"]["regions"]
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        rows.append({"regions": name, **config.stored_settings(), "map": oxford["map"],
                     "top1": oxford["top1"], "roxford_medium_map": medium["map"],
                     "index_images_per_s": oxford["index_images_per_s"],
                     "query_ms_p50": oxford["query_ms_p50"],
                     "regions_per_image": stats["regions_per_image"],
                     "stored_bytes_per_image": stats["stored_bytes_per_image"]})
        print(f"{name:<42} mAP {oxford['map']:.4f}  top1 {oxford['top1']:.2f}  rOxf-M "
              f"{medium['map']:.4f}  {oxford['index_images_per_s']:.2f} img/s  "
              f"{oxford['query_ms_p50']:.0f} ms  {stats['regions_per_image']} regions  "
              f"{stats['stored_bytes_per_image']} B", flush=True)
    save(saved_as, {"dataset": "oxford5k_subset (gnd_subset.json) and Revisited "
                               "Oxford medium (gnd_roxford_subset.json)", "query": "box crop",
                               "channel": "regions"}, rows)


def fmnist_collection(folder: Path) -> Path:
    root = cache_dir() / "bench" / "fmnist-collection"
    configs: dict[str, ChannelConfig] = {"regions": RegionsChannelConfig(),
                                         "text": TextChannelConfig()}
    with Collection(root, channels=list(FMNIST_CHANNELS), configs=configs).open() as collection:
        report = collection.index([folder])
        if report.processed:
            print(f"indexed {report.processed} images at {report.images_per_s:.1f} img/s",
                  file=sys.stderr)
    return root


def inverted_copy(folder: Path) -> Path:
    """Fashion-MNIST as catalogue photos look: a dark product on white (the data set has
    light products on black). Labels and paths as in ``folder``."""
    out = cache_dir() / "bench" / "fmnist100-inverted"
    if not (out / "labels.tsv").exists():
        for source in folder.rglob("*.png"):
            target = out / source.relative_to(folder)
            target.parent.mkdir(parents=True, exist_ok=True)
            with Image.open(source) as image:
                ImageOps.invert(image.convert("L")).save(target)
        (out / "labels.tsv").write_text((folder / "labels.tsv").read_text())
    return out


def text_only_collection(folder: Path) -> Path:
    root = cache_dir() / "bench" / "fmnist-inverted-text"
    with Collection(root, channels=["text"], configs={"text": TextChannelConfig()}) as collection:
        collection.index([folder])
    return root


def run_text(args: argparse.Namespace) -> None:
    folder = fmnist_folder(args.fmnist)
    if args.invert:
        folder = inverted_copy(folder)
        root = text_only_collection(folder)
    else:
        root = fmnist_collection(folder)
    labels = dict(line.split("\t") for line in (folder / "labels.tsv").read_text()
                  .strip().splitlines()[1:])
    rows = []
    with Collection(root).open() as collection:
        path_class = {record.path: labels[str(Path(record.path).relative_to(folder))]
                      for record in collection.images()}
        channel = collection.channel("text")
        for mode in ("bm25", "semantic", "both"):
            precision, aps, latencies = [], [], []
            for name in CLASSES:
                query = name.replace("/", " ").lower()
                started = time.perf_counter()
                hits = channel.search_text(  # type: ignore[attr-defined]
                    query, k=len(path_class), mode=mode)
                latencies.append(time.perf_counter() - started)
                records = collection.catalog.images.by_id([h.image_id for h in hits])
                ranked = [records[h.image_id].path for h in hits]
                relevant = {path for path, label in path_class.items() if label == name}
                precision.append(sum(path in relevant for path in ranked[:10]) / 10)
                aps.append(average_precision(ranked, relevant, set()))
                rows.append({"mode": mode, "query": query, "p_at_10": precision[-1],
                             "ap": aps[-1], "returned": len(ranked)})
            rows.append({"mode": mode, "query": "MEAN", "p_at_10": float(np.mean(precision)),
                         "ap": float(np.mean(aps)),
                         "query_ms_p50": 1000 * float(np.median(latencies))})
    print(f"\n{'mode':<10}{'query':<14}{'P@10':>8}{'AP':>8}")
    for row in rows:
        print(f"{row['mode']:<10}{row['query']:<14}{row['p_at_10']:>8.2f}{row['ap']:>8.3f}")
    save("multiclue_text" + ("_inverted" if args.invert else ""), {
        "dataset": "fashion-mnist test, 100 per class, 112 px"
                   + (", inverted: dark product on white" if args.invert else ""),
        "annotations": "automatic only: ImageNet top-5"
                       + ("" if args.invert else " and NanoDet objects"),
        "text": TextChannelConfig().stored_settings()}, rows)


def fmnist_truth(folder: Path, per_class: int = 10) -> Path:
    """Queries: the first ``per_class`` images of each class; relevant: the rest of it."""
    labels = [line.split("\t") for line in (folder / "labels.tsv").read_text()
              .strip().splitlines()[1:]]
    by_class: dict[str, list[str]] = {}
    for path, label in labels:
        by_class.setdefault(label, []).append(path)
    truth = folder / "truth_fusion.tsv"
    lines = [f"{query}\t{other}" for paths in by_class.values() for query in paths[:per_class]
             for other in paths if other != query]
    truth.write_text("\n".join(lines) + "\n")
    return truth


def run_fusion(args: argparse.Namespace) -> None:
    rows: list[dict[str, Any]] = []
    reports = {
        "ukbench56": evaluate("ukbench", data=args.data / "ukbench56", channel="auto"),
        "oxford1k-crop": evaluate("oxford", data=args.data / "oxford5k_subset",
                                  channel="auto"),
    }
    folder = fmnist_folder(args.fmnist)
    reports["fashion-mnist"] = evaluate(
        "custom", root=folder, truth=fmnist_truth(folder), channel="auto",
        collection=fmnist_collection(folder), auto_channels=FMNIST_CHANNELS)
    for dataset, report in reports.items():
        keys = ("ns_score", "map", "top1") if dataset == "ukbench56" else ("map", "top1",
                                                                           "recall_at_10")
        table(dataset, report["by_method"], keys)
        rows += [{"dataset": dataset, "method": name, **row}
                 for name, row in report["by_method"].items()]
    save("multiclue_fusion", {"folds": "2-fold over queries (even/odd) for *-cv",
                              "fmnist_queries": "10 per class, relevant = same class"}, rows)


def run_speed(args: argparse.Namespace) -> None:
    """Indexing speed with each new channel beside the global one, on the same images, in
    fresh collections, one after another (models loaded before the clock starts)."""
    import os
    import shutil
    import tempfile

    files = sorted((args.data / "oxford5k_subset" / "jpg").glob("*.jpg"))[:args.images]
    setups = {"global": ["global"], "global+text": ["global", "text"],
              "global+regions": ["global", "regions"],
              "global+regions+text": ["global", "regions", "text"]}
    rows = []
    load_before = os.getloadavg()[0]
    for name, channels in setups.items():
        folder = Path(tempfile.mkdtemp(prefix="lookalike-speed-"))
        try:
            with Collection(folder / "c", channels=channels) as collection:
                report = collection.index(files)
                started = time.perf_counter()
                collection.search(text="person", k=10) if "text" in channels else None
                rows.append({"channels": name, "images": report.processed,
                             "images_per_s": round(report.images_per_s, 2),
                             "extract_s": round(report.stage_seconds["extract"], 2),
                             "prepare_s": round(report.prepare_seconds, 2),
                             "first_text_search_ms": round(
                                 1000 * (time.perf_counter() - started), 1)
                             if "text" in channels else None,
                             "regions_per_image": collection.info()["channels"].get(
                                 "regions", {}).get("regions_per_image")})
        finally:
            shutil.rmtree(folder)
        print(rows[-1])
    base = rows[0]["images_per_s"]
    for row in rows:
        row["speed_vs_global"] = round(row["images_per_s"] / base, 3)
    save("multiclue_speed", {"images": f"first {args.images} of oxford5k_subset/jpg "
                             "(<= 512 px)", "load_average_before": load_before,
                             "load_average_after": os.getloadavg()[0]}, rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("what", choices=("crop", "text", "fusion", "speed", "regions",
                                         "projection"))
    parser.add_argument("--images", type=int, default=200, help="speed: images indexed")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--fmnist", type=Path, default=None,
                        help="an exported Fashion-MNIST folder (default: export one)")
    parser.add_argument("--setups", default=None,
                        help="regions: only the setups whose name holds one of these words")
    parser.add_argument("--invert", action="store_true",
                        help="text: dark products on white, as catalogue photos are")
    args = parser.parse_args()
    {"crop": run_crop, "text": run_text, "fusion": run_fusion, "speed": run_speed,
     "regions": run_regions, "projection": run_projection}[args.what](args)


if __name__ == "__main__":
    main()
