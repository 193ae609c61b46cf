"""Object regions: detector quality on a hand-checked image set, and detection speed.

    python benchmarks/bench_regions.py detect [--data ../shared/data] [--detector nanodet]

detect: image-level label quality of the object detector on
``benchmarks/data/detection_handchecked.json`` (49 images: Oxford street scenes, interiors
and buildings, and UKBench household objects, 16 of them with no COCO object), labelled by
a person looking at each image. For each image the detector's predicted classes are the
labels of its regions at or above a score threshold (one box is enough); they are compared
with the classes the person marked present. Classes marked uncertain are ignored, every
other class counts as absent. Precision, recall and F1 are micro-averaged over (image,
class) pairs. The detector runs once per image at the lowest threshold; a higher threshold
keeps the regions at or above it, which is what a run at that threshold returns (NMS only
lets a stronger box suppress a weaker one, and ``max_regions`` keeps the best scores).
Speed: ms per image through ``ObjectDetector.detect`` (resize, inference, decode, NMS) on
the same images, decoded beforehand, after one warm-up call, at their stored size and
upscaled to 1024 px on the longest side; model load time is the process's first
``load()`` (it includes importing ONNX Runtime).
"""

from __future__ import annotations

import argparse
import json
import os
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
from common import DEFAULT_DATA, ROOT, markdown_table, save
from PIL import Image

from lookalike.images import load_image
from lookalike.regions.coco import COCO_LABELS
from lookalike.regions.detect import ObjectDetectorConfig, Region, make_detector

HANDCHECKED = ROOT / "benchmarks" / "data" / "detection_handchecked.json"
THRESHOLDS = (0.3, 0.35, 0.4, 0.5, 0.6)  # 0.35 is ObjectDetectorConfig's default
PER_CLASS_MIN_IMAGES = 3
UPSCALED_SIDE = 1024


# -- ground truth and metrics (pure functions) ---------------------------------------------------

def load_handchecked(path: Path = HANDCHECKED) -> list[dict[str, Any]]:
    """The hand-checked images: ``{"path", "present": set, "uncertain": set}`` each."""
    document = json.loads(path.read_text())
    images = []
    for entry in document["images"]:
        present, uncertain = set(entry["present"]), set(entry["uncertain"])
        unknown = (present | uncertain) - set(COCO_LABELS)
        if unknown:
            raise ValueError(f"expected COCO-80 class names in {path} ({entry['path']}), "
                             f"got {sorted(unknown)}")
        if present & uncertain:
            raise ValueError(f"expected a class to be either present or uncertain in "
                             f"{entry['path']}, got both for {sorted(present & uncertain)}")
        images.append({"path": entry["path"], "present": present, "uncertain": uncertain})
    return images


def predicted_labels(regions: list[Region], threshold: float) -> set[str]:
    """The classes with at least one region scoring ``threshold`` or more."""
    return {region.label for region in regions if region.score >= threshold}


def label_counts(present: set[str], uncertain: set[str], predicted: set[str]
                 ) -> tuple[int, int, int]:
    """(true positives, false positives, misses) for one image; uncertain classes count
    as neither."""
    judged = predicted - uncertain
    return len(judged & present), len(judged - present), len(present - predicted)


def precision_recall_f1(tp: int, fp: int, fn: int) -> dict[str, float]:
    precision = tp / (tp + fp) if tp + fp else 1.0
    recall = tp / (tp + fn) if tp + fn else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": precision, "recall": recall, "f1": f1}


def threshold_row(images: list[dict[str, Any]], regions: list[list[Region]],
                  threshold: float) -> dict[str, Any]:
    tp = fp = fn = 0
    images_with_fp = empty_with_fp = 0
    false_classes: Counter[str] = Counter()
    for image, found in zip(images, regions, strict=True):
        predicted = predicted_labels(found, threshold)
        hits, false, missed = label_counts(image["present"], image["uncertain"], predicted)
        tp, fp, fn = tp + hits, fp + false, fn + missed
        images_with_fp += false > 0
        empty_with_fp += false > 0 and not image["present"]
        false_classes.update(predicted - image["present"] - image["uncertain"])
    return {"table": "thresholds", "min_score": threshold, **precision_recall_f1(tp, fp, fn),
            "tp": tp, "fp": fp, "fn": fn, "images_with_fp": images_with_fp,
            "empty_images_with_fp": empty_with_fp,
            "fp_classes": ", ".join(f"{label} {count}"
                                    for label, count in false_classes.most_common(6))}


def per_class_rows(images: list[dict[str, Any]], regions: list[list[Region]],
                   thresholds: tuple[float, ...], min_images: int) -> list[dict[str, Any]]:
    """Recall of each class present in at least ``min_images`` images, per threshold."""
    counts = Counter(label for image in images for label in image["present"])
    rows = []
    for label, count in sorted(counts.items(), key=lambda item: (-item[1], item[0])):
        if count < min_images:
            continue
        row: dict[str, Any] = {"table": "per_class", "class": label, "images": count}
        for threshold in thresholds:
            found = sum(label in predicted_labels(regs, threshold)
                        for image, regs in zip(images, regions, strict=True)
                        if label in image["present"])
            row[f"recall@{threshold}"] = found / count
        rows.append(row)
    return rows


# -- speed ---------------------------------------------------------------------------------------

def upscale(image: np.ndarray, side: int) -> np.ndarray:
    """``image`` resized (bicubic) so that its longest side is ``side`` pixels."""
    height, width = image.shape[:2]
    factor = side / max(height, width)
    size = (max(1, round(width * factor)), max(1, round(height * factor)))
    return np.asarray(Image.fromarray(image).resize(size, Image.Resampling.BICUBIC))


def timed_ms(detect: Callable[[np.ndarray], Any], images: list[np.ndarray]
             ) -> tuple[list[float], float]:
    """(wall-clock ms of each call, this process's CPU ms per image, all threads): CPU time
    changes less than wall time when other processes share the cores."""
    detect(images[0])  # warm-up: first-run allocations in ONNX Runtime
    times = []
    cpu_started = time.process_time()
    for image in images:
        started = time.perf_counter()
        detect(image)
        times.append(1000 * (time.perf_counter() - started))
    return times, 1000 * (time.process_time() - cpu_started) / len(images)


def speed_row(label: str, images: list[np.ndarray], timed: tuple[list[float], float]
              ) -> dict[str, Any]:
    times, cpu_ms = timed
    pixels = [image.shape[0] * image.shape[1] for image in images]
    return {"table": "speed", "input": label, "images": len(images),
            "median_megapixels": float(np.median(pixels)) / 1e6,
            "ms_p50": float(np.percentile(times, 50)), "ms_p95": float(np.percentile(times, 95)),
            "ms_mean": float(np.mean(times)), "cpu_ms_mean": cpu_ms}


# -- detect --------------------------------------------------------------------------------------

def detect(args: argparse.Namespace) -> None:
    images = load_handchecked(args.handchecked)
    pictures = [load_image(args.data / image["path"]) for image in images]
    config = replace(ObjectDetectorConfig(), min_score=min(THRESHOLDS))
    load_avg_before = os.getloadavg()

    started = time.perf_counter()
    detector = make_detector(args.detector, config).load()
    load_s = time.perf_counter() - started

    regions = [detector.detect(picture) for picture in pictures]
    rows = [threshold_row(images, regions, threshold) for threshold in THRESHOLDS]
    class_rows = per_class_rows(images, regions, THRESHOLDS, PER_CLASS_MIN_IMAGES)

    big = [upscale(picture, UPSCALED_SIDE) for picture in pictures]
    speed_rows = [speed_row("stored size (Oxford <= 512 px, UKBench 640x480)", pictures,
                            timed_ms(detector.detect, pictures)),
                  speed_row(f"upscaled to {UPSCALED_SIDE} px longest side", big,
                            timed_ms(detector.detect, big))]
    speed_rows.append({"table": "speed", "images": None, "ms_p50": 1000 * load_s,
                       "input": "model load (first load(), incl. onnxruntime import)"})
    load_avg_after = os.getloadavg()

    per_image = [{"table": "per_image", "path": image["path"],
                  "present": sorted(image["present"]), "uncertain": sorted(image["uncertain"]),
                  "detected": {label: round(max(r.score for r in found if r.label == label), 3)
                               for label in sorted({r.label for r in found})}}
                 for image, found in zip(images, regions, strict=True)]
    settings = {
        "detector": args.detector, "config": vars(config),
        "threads": getattr(detector, "threads", None),
        "handchecked": str(args.handchecked.relative_to(ROOT)
                           if args.handchecked.is_relative_to(ROOT) else args.handchecked),
        "images": len(images), "images_without_coco_object": sum(not i["present"] for i in images),
        "present_labels": sum(len(i["present"]) for i in images),
        "thresholds": list(THRESHOLDS), "per_class_min_images": PER_CLASS_MIN_IMAGES,
        "averaging": "micro over (image, class) pairs; uncertain classes ignored",
        "load_avg_1_5_15_before": [round(v, 2) for v in load_avg_before],
        "load_avg_1_5_15_after": [round(v, 2) for v in load_avg_after],
    }
    path = save("regions_detect", settings, rows + class_rows + speed_rows + per_image)
    print(markdown_table(rows, ["min_score", "precision", "recall", "f1", "tp", "fp", "fn",
                                "images_with_fp", "empty_images_with_fp", "fp_classes"]))
    print()
    print(markdown_table(class_rows, ["class", "images"]
                         + [f"recall@{threshold}" for threshold in THRESHOLDS]))
    print()
    print(markdown_table(speed_rows, ["input", "images", "median_megapixels", "ms_p50", "ms_p95",
                                      "ms_mean", "cpu_ms_mean"]))
    print(f"\nload average before {settings['load_avg_1_5_15_before']}, "
          f"after {settings['load_avg_1_5_15_after']}; saved {path}")


# -- command line --------------------------------------------------------------------------------

def add_detect(commands: Any) -> None:
    parser = commands.add_parser("detect", help="detector label quality and speed")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--detector", default="nanodet")
    parser.add_argument("--handchecked", type=Path, default=HANDCHECKED,
                        help="hand-checked labels (default: %(default)s)")
    parser.set_defaults(run=detect)


# One entry per subcommand: each adds its own parser and sets ``run``.
SUBCOMMANDS: list[Callable[[Any], None]] = [add_detect]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="what", required=True)
    for add in SUBCOMMANDS:
        add(commands)
    args = parser.parse_args()
    args.run(args)


if __name__ == "__main__":
    main()
