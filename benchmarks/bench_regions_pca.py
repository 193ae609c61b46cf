"""How many dimensions do pooled regional vectors need? PCA before search, learned on the
collection itself or on other photos, on Oxford and Revisited Oxford (medium).

    python benchmarks/bench_regions_pca.py [--data ../shared/data]

Research for the regions footprint (issue 14's 8 kB per image), not a shipped feature:
the regions channel (GeM at 256 px, objects and windows 2,3, float32 rows) indexes the
Oxford subset; its stored vectors and the queries' box vectors are projected on the top
``d`` principal components (centred, not whitened) learned either on the same collection
(an upper bound for a PCA learned on the user's own photos) or on "other" photos (UKBench56
and the scikit-image samples: whole image and R-MAC windows), then searched exactly with
each image scored by its best region, as the channel does.
"""

from __future__ import annotations

import argparse
import shutil
import sqlite3
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
from common import DEFAULT_DATA, markdown_table, save
from PIL import Image

from lookalike.collection import RegionsChannelConfig
from lookalike.eval import evaluate
from lookalike.eval.datasets import RetrievalDataset, load_dataset
from lookalike.eval.metrics import average_precision
from lookalike.extractors.feature_map import FeatureMapModel
from lookalike.regions.grid import grid_regions, square_box
from lookalike.samples import DATABASE_SAMPLES, load_sample

DIMS = (512, 256, 128, 64)


def stored_regions(catalog: Path, dim: int) -> tuple[np.ndarray, np.ndarray, dict[int, str]]:
    """(vectors, image id of each, path of each image id) from a regions catalog."""
    with sqlite3.connect(catalog) as db:
        rows = db.execute("SELECT v.image_id, v.vector, i.path FROM vectors v JOIN images i "
                          "ON i.id = v.image_id WHERE v.channel = 'regions' ORDER BY v.id"
                          ).fetchall()
    vectors = np.stack([np.frombuffer(blob, np.float32, dim) for _, blob, _ in rows])
    return vectors, np.array([row[0] for row in rows]), {row[0]: row[2] for row in rows}


def windows(model: FeatureMapModel, image: np.ndarray) -> np.ndarray:
    height, width = image.shape[:2]
    boxes = [(0.0, 0.0, float(width), float(height)), *grid_regions(width, height, (2, 3))]
    return model.pool(model.feature_map(image),
                      [(b[0] / width, b[1] / height, b[2] / width, b[3] / height) for b in boxes])


def query_vectors(model: FeatureMapModel, dataset: RetrievalDataset) -> np.ndarray:
    found = []
    for query in dataset.queries:
        image = np.asarray(Image.open(query.path).convert("RGB"))
        height, width = image.shape[:2]
        if query.box is None:
            raise ValueError(f"{query.path}: expected a query box")
        box = square_box(query.box, width, height)
        found.append(model.pool(model.feature_map(image), [
            (box[0] / width, box[1] / height, box[2] / width, box[3] / height)])[0])
    return np.stack(found)


def mean_ap(vectors: np.ndarray, image_of: np.ndarray, paths: dict[int, str],
            queries: np.ndarray, dataset: RetrievalDataset) -> float:
    vectors = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    queries = queries / np.linalg.norm(queries, axis=1, keepdims=True)
    scores = []
    for vector, query in zip(queries, dataset.queries, strict=True):
        similarities = vectors @ vector
        best: dict[int, float] = {}
        for i in np.argsort(-similarities):
            best.setdefault(int(image_of[i]), float(similarities[i]))
        ranked = [Path(paths[image_id]) for image_id in best]
        scores.append(average_precision(ranked, query.relevant, query.junk))
    return float(np.mean(scores))


def principal(matrix: np.ndarray, dims: int) -> tuple[np.ndarray, np.ndarray]:
    mean = matrix.mean(axis=0)
    _, _, components = np.linalg.svd(matrix - mean, full_matrices=False)
    return mean, components[:dims]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    args = parser.parse_args()
    oxford = args.data / "oxford5k_subset"
    folder = Path(tempfile.mkdtemp(prefix="lookalike-pca-"))
    try:
        evaluate("oxford", data=oxford, channel="regions", collection=folder / "c",
                 configs={"regions": RegionsChannelConfig(storage="float32")})
        stored, image_of, paths = stored_regions(folder / "c" / "catalog.sqlite", 1280)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    model = FeatureMapModel("efficientnet-lite0").load()
    other = np.concatenate(
        [windows(model, np.asarray(Image.open(path).convert("RGB")))
         for path in sorted((args.data / "ukbench56" / "full").glob("*.jpg"))]
        + [windows(model, load_sample(name)) for name in DATABASE_SAMPLES])
    rows: list[dict[str, Any]] = []
    for name in ("oxford", "roxford-medium"):
        dataset = load_dataset(name, data=oxford)
        if not isinstance(dataset, RetrievalDataset):
            raise TypeError(f"expected a retrieval dataset, got {type(dataset).__name__}")
        queries = query_vectors(model, dataset)
        row: dict[str, Any] = {"dataset": name,
                               "full_1280": mean_ap(stored, image_of, paths, queries, dataset)}
        for dims in DIMS:
            for learned_on, sample in (("self", stored), ("other", other)):
                mean, components = principal(sample, dims)
                row[f"{learned_on}_{dims}"] = mean_ap((stored - mean) @ components.T, image_of,
                                                      paths, (queries - mean) @ components.T,
                                                      dataset)
        print(row, flush=True)
        rows.append(row)
    print(markdown_table(rows, list(rows[0])))
    save("regions_pca", {"regions": "GeM 256, objects + windows 2,3", "stored": len(stored),
                         "other": f"{len(other)} regions of UKBench56 and the scikit-image "
                                  "samples (whole image + windows 2,3)"}, rows)


if __name__ == "__main__":
    main()
