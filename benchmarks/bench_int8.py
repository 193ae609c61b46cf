"""int8 against float32: the global model, and the vectors the catalog stores.

    python benchmarks/bench_int8.py [--data ../shared/data] [--images 300]

Quality is each model's global channel on UKBench56 (N-S), Oxford 1k (mAP, box-crop
queries) and Revisited Oxford medium, with ``lookalike.eval``, with the catalog's vectors
stored as float32 and as int8 (``GlobalChannelConfig.storage``). Labels: how often the int8
model's top ImageNet class is float32's, on the Oxford images (the text channel stores
those classes). Speed: global-only indexing of the same photos resized to 640 pixels into
fresh collections, one model after the other, in this run.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
from common import DEFAULT_DATA, markdown_table, save
from PIL import Image

from lookalike import Collection, GlobalChannelConfig
from lookalike.eval import evaluate
from lookalike.extractors import OnnxExtractor, make_extractor

MODELS = ("efficientnet-lite0", "efficientnet-lite0-int8")


def quality(data: Path, model: str, storage: str) -> dict[str, float]:
    configs = {"global": GlobalChannelConfig(extractor=model, storage=storage)}
    ukbench = evaluate("ukbench", data=data / "ukbench56", configs=configs)
    oxford = evaluate("oxford", data=data / "oxford5k_subset", configs=configs)
    medium = evaluate("roxford-medium", data=data / "oxford5k_subset", configs=configs)
    return {"ukbench_ns": ukbench["ns_score"], "oxford_map": oxford["map"],
            "roxford_medium_map": medium["map"]}


def labels(data: Path, limit: int) -> dict[str, float]:
    """Top-1 agreement and mean top-5 overlap of the two models' ImageNet classes."""
    files = sorted((data / "oxford5k_subset" / "jpg").glob("*.jpg"))[:limit]
    found = {}
    for model in MODELS:
        extractor = make_extractor(model)
        if not isinstance(extractor, OnnxExtractor):
            raise TypeError(f"expected an ONNX model, got {model}")
        probabilities = []
        for start in range(0, len(files), 32):
            batch = [np.asarray(Image.open(path).convert("RGB"))
                     for path in files[start:start + 32]]
            probabilities.append(extractor.classify(batch))
        found[model] = np.concatenate(probabilities)
    full, int8 = (np.argsort(-found[model], axis=1)[:, :5] for model in MODELS)
    overlap = np.mean([len(set(a) & set(b)) / 5 for a, b in zip(full, int8, strict=True)])
    return {"top1_agreement": float(np.mean(full[:, 0] == int8[:, 0])),
            "top5_overlap": float(overlap), "label_images": len(files)}


def speed(data: Path, count: int) -> dict[str, float]:
    scratch = Path(tempfile.mkdtemp(prefix="lookalike-int8-"))
    try:
        photos = scratch / "photos"
        photos.mkdir()
        for i, path in enumerate(sorted((data / "oxford5k_subset" / "jpg").glob("*.jpg"))[:count]):
            with Image.open(path) as image:
                rgb = image.convert("RGB")
                scale = 640 / max(rgb.size)
                rgb.resize((round(rgb.width * scale), round(rgb.height * scale)),
                           Image.Resampling.LANCZOS).save(photos / f"{i:05d}.jpg", quality=90)
        rates = {}
        for model in MODELS:
            with Collection(scratch / model, channels=["global"],
                            configs={"global": GlobalChannelConfig(extractor=model)}) as collection:
                rates[model] = collection.index([photos]).images_per_s
        return rates
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--images", type=int, default=300, help="photos indexed for speed")
    args = parser.parse_args()
    rates = speed(args.data, args.images)
    agreement = labels(args.data, 1008)
    rows: list[dict[str, Any]] = []
    for model, storage in ((MODELS[0], "float32"), (MODELS[0], "int8"), (MODELS[1], "float32"),
                           (MODELS[1], "int8")):
        rows.append({"model": model, "stored_as": storage, **quality(args.data, model, storage),
                     "index_images_per_s": round(rates[model], 1),
                     "speed_vs_float32": round(rates[model] / rates[MODELS[0]], 2)})
    print(markdown_table(rows, list(rows[0])))
    print(agreement)
    save("int8", {"photos": f"first {args.images} Oxford images resized to 640 px",
                  "labels": agreement}, rows)


if __name__ == "__main__":
    main()
