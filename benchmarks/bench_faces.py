"""Faces: threshold calibration, LFW / ORL quality, clustering, and speed.

    python benchmarks/bench_faces.py calibrate [--data ../shared/data] [--embedders E,..]
    python benchmarks/bench_faces.py quality   [--data ../shared/data] [--embedders E,..]
    python benchmarks/bench_faces.py cluster   [--data ../shared/data] [--people N]
                                               [--embedders E,..]
    python benchmarks/bench_faces.py speed     [--data ../shared/data] [--embedders E,..]
    python benchmarks/bench_faces.py embed-speed [--data ../shared/data] [--embedders E,..]

Every subcommand but groups runs each detector with each embedder of ``--embedders``
(default: sface, then dlib-resnet), so the two are compared in one run.

calibrate: for each detector, the cosine-similarity threshold that maximises
accuracy on LFW View 1 *training* pairs (pairsDevTrain.txt); these become
lookalike.faces.model.VERIFY_THRESHOLDS. The face used in each image is the one
nearest the centre (LFW's convention); an image without a face makes its pair
count as an error (it is never dropped).

groups: detection recall on group photos (LFW faces tiled 2x2 to 6x6), where
small faces in a large picture separate the detectors.

quality: through ``lookalike.eval`` (the code behind ``lookalike eval``): LFW
View 1 test accuracy (10-fold) and detector failures, and ORL rank-1
(leave-one-out), for each detector, side by side with the whole-image baseline
(the global channel embeds the whole image without detection or alignment).

cluster: people clustering on LFW identities with at least two images:
pairwise precision/recall/F, cluster counts, and split/merge errors, for each
algorithm and threshold.

speed: faces per second for detection and for embedding, and face-search
latency at 10k and 1M faces (synthetic unit vectors for the large size).
embed-speed: only the embedding part of speed (minutes instead of the 1M-face index).
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import skimage.data as skimage_data
from common import DEFAULT_DATA, RESULTS, markdown_table, save
from PIL import Image

from lookalike.collection import Collection, FacesChannelConfig
from lookalike.collection.faces_channel import check_faces_channel
from lookalike.eval import evaluate, metrics
from lookalike.eval.datasets import load_lfw_pairs, load_lfw_people
from lookalike.eval.settings import EvalSettings
from lookalike.eval.verification import dataset_face_vectors
from lookalike.faces import FaceAnalyzer, align_face, central_face, make_embedder
from lookalike.faces.cluster import chinese_whispers, cluster_faces
from lookalike.faces.model import CLUSTER_MARGINS
from lookalike.images import load_image
from lookalike.runtime import set_inference_threads

DETECTORS = ["centerface", "dlib-hog", "blazeface"]
EMBEDDERS = ["sface", "dlib-resnet"]


def central_vectors(analyzer: FaceAnalyzer, paths: tuple[Path, ...]) -> dict[Path, np.ndarray]:
    """The central face's vector of each image that has a face."""
    vectors = {}
    for path in paths:
        image = load_image(path)
        found = analyzer.faces(image)
        if found:
            pick = central_face([f.face for f in found], image.shape[1], image.shape[0])
            vectors[path] = found[pick].vector
    return vectors


def calibrate(data: Path, detectors: list[str], embedders: list[str]) -> None:
    dataset = load_lfw_pairs(data / "lfw", "pairsDevTrain.txt")
    rows = []
    for detector, embedder in ((d, e) for e in embedders for d in detectors):
        analyzer = FaceAnalyzer(detector, embedder).load()
        started = time.perf_counter()
        vectors = central_vectors(analyzer, dataset.images)
        seconds = time.perf_counter() - started
        # A pair without a face counts as an error at any threshold (as in lookalike eval).
        failed = np.array([p.a not in vectors or p.b not in vectors for p in dataset.pairs])
        scores = np.array([(-1.0 if p.same else 1.0) if bad
                           else float(vectors[p.a] @ vectors[p.b])
                           for p, bad in zip(dataset.pairs, failed, strict=True)])
        threshold, accuracy = metrics.best_threshold(scores, dataset.same)
        rows.append({"detector": detector, "embedder": embedder,
                     "threshold": round(threshold, 4), "train_accuracy": accuracy,
                     "images": len(dataset.images),
                     "images_without_face": len(dataset.images) - len(vectors),
                     "pairs_with_failure": int(np.sum(failed)),
                     "seconds": round(seconds, 1)})
        print(rows[-1], flush=True)
    # Pairs calibrated on another run keep their rows (marked with that run's commit).
    previous = RESULTS / "faces_calibration.json"
    if previous.exists():
        earlier = json.loads(previous.read_text())
        done = {(row["detector"], row["embedder"]) for row in rows}
        kept = [{"run": earlier.get("commit", ""), **row} for row in earlier["rows"]
                if (row["detector"], row["embedder"]) not in done]
        rows = kept + rows
    save("faces_calibration", {"pairs": "LFW View 1 pairsDevTrain.txt", "face": "central"}, rows)
    print(markdown_table(rows, list(rows[0])))


# -- quality ------------------------------------------------------------------------------------

def whole_image_dlib(data: Path) -> dict[str, Any]:
    """LFW View 1 test with dlib's embedder on the whole image, no detection or alignment."""
    dataset = load_lfw_pairs(data / "lfw", "pairsDevTest.txt")
    embedder = make_embedder("dlib-resnet").load()
    size = embedder.info.chip
    vectors = {}
    for path in dataset.images:
        image = load_image(path)
        chip = np.asarray(Image.fromarray(image).resize((size, size), Image.Resampling.BILINEAR))
        vectors[path] = embedder.embed([chip])[0]
    scores = np.array([float(vectors[p.a] @ vectors[p.b]) for p in dataset.pairs])
    accuracy, spread, _ = metrics.verification_accuracy_kfold(scores, dataset.same,
                                                              dataset.folds)
    return {"method": "whole image, dlib-resnet (no detection, no alignment)",
            "lfw_accuracy": accuracy, "lfw_std": spread}


def quality(data: Path, detectors: list[str], embedders: list[str]) -> None:
    rows: list[dict[str, Any]] = []
    lfw, orl = data / "lfw", data / "orl_faces"
    for detector, embedder in ((d, e) for e in embedders for d in detectors):
        faces = FacesChannelConfig(detector=detector, embedder=embedder)
        verified = evaluate("lfw", data=lfw, pairs=Path("pairsDevTest.txt"), channel="faces",
            configs={"faces": faces})
        identified = evaluate("orl", data=orl, channel="faces", configs={"faces": faces})
        rows.append({"method": f"faces channel: {detector} + {embedder}",
                     "lfw_accuracy": verified["accuracy"], "lfw_std": verified["accuracy_std"],
                     "lfw_images_without_face": verified["images_without_face"],
                     "lfw_pairs_with_failure": verified["pairs_with_failure"],
                     "lfw_verify_ms_p50": verified["query_ms_p50"],
                     "orl_rank1": identified["top1"], "orl_map": identified["map"],
                     "orl_queries_without_face": identified["queries_without_face"]})
        print(rows[-1], flush=True)
    verified = evaluate("lfw", data=lfw, pairs=Path("pairsDevTest.txt"), channel="global")
    identified = evaluate("orl", data=orl, channel="global")
    rows.append({"method": "whole image, global channel (efficientnet-lite0)",
                 "lfw_accuracy": verified["accuracy"], "lfw_std": verified["accuracy_std"],
                 "lfw_verify_ms_p50": verified["query_ms_p50"],
                 "orl_rank1": identified["top1"], "orl_map": identified["map"]})
    rows.append(whole_image_dlib(data))
    for row in rows:
        print(row, flush=True)
    save("faces_quality", {"lfw": "View 1 pairsDevTest.txt, 10 folds",
                           "orl": "400 images, leave-one-out"}, rows)
    print(markdown_table(rows, ["method", "lfw_accuracy", "lfw_std", "lfw_images_without_face",
                                "lfw_pairs_with_failure", "orl_rank1", "orl_map"]))


def groups(data: Path) -> None:
    """Detection recall on group photos: LFW faces tiled n x n into one picture (tiles of
    250 px, so a 6 x 6 photo is 1,500 px wide), as in a class photo. A tile counts as
    found when a detected face's centre lies in its middle half."""
    images = [load_image(path) for path in
              load_lfw_pairs(data / "lfw", "pairsDevTest.txt").images[:144]]
    rows = []
    for detector in DETECTORS:
        analyzer = FaceAnalyzer(detector).load()
        for grid in (2, 4, 6):
            found = tiles = 0
            for start in range(0, len(images) - grid * grid + 1, grid * grid):
                chosen = images[start:start + grid * grid]
                photo = np.vstack([np.hstack(chosen[row * grid:(row + 1) * grid])
                                   for row in range(grid)])
                centres = [((f.box[0] + f.box[2]) / 2, (f.box[1] + f.box[3]) / 2)
                           for f in analyzer.detect(photo)]
                for row in range(grid):
                    for col in range(grid):
                        tiles += 1
                        found += any(62 <= x - 250 * col < 188 and 62 <= y - 250 * row < 188
                                     for x, y in centres)
            rows.append({"detector": detector, "photo": f"{grid}x{grid} faces, "
                                                        f"{250 * grid} px", "tiles": tiles,
                         "recall": found / tiles})
            print(rows[-1], flush=True)
    save("faces_groups", {"tiles": "LFW DevTest images, 250 px each", "detect_side": 640},
         rows)
    print(markdown_table(rows, ["detector", "photo", "tiles", "recall"]))


# -- clustering -----------------------------------------------------------------------------------

CLUSTER_THRESHOLDS = [round(0.91 + 0.005 * i, 3) for i in range(11)]  # 0.91 .. 0.96


def cluster_thresholds(embedder: str, verify: float) -> list[float]:
    """The thresholds tried: dlib's fixed list; for another embedder, whose similarities
    spread wider, steps of 0.025 from just below its verification threshold, and that
    threshold plus dlib's margin."""
    if embedder == "dlib-resnet":
        return CLUSTER_THRESHOLDS
    steps = [round(verify + 0.025 * i, 3) for i in range(-2, 13)]
    return sorted({*steps, round(verify + CLUSTER_MARGINS["dlib-resnet"], 3)})


def cluster(data: Path, max_people: int | None, embedders: list[str]) -> None:
    """Choose the algorithm and threshold on half of the LFW identities, report on the
    other half (even and odd identity numbers, in name order), so the reported
    figures are not tuned on the faces they are measured on."""
    dataset = load_lfw_people(data / "lfw", max_people=max_people)
    rows: list[dict[str, Any]] = []
    settings: dict[str, Any] = {}
    for embedder in embedders:
        config = FacesChannelConfig(embedder=embedder)
        vectors, found, _ = dataset_face_vectors(
            dataset, EvalSettings(channel="faces", configs={"faces": config}))
        truth = np.array(dataset.labels)[found]
        settings[embedder] = {"images_without_face": int(np.sum(~found)),
                              "verify_threshold": config.same_person,
                              "cluster_threshold": config.same_person_cluster}
        rows += cluster_rows(embedder, vectors[found], truth,
                             cluster_thresholds(embedder, config.same_person))
    best = {}
    for key in {(row["embedder"], row["algorithm"]) for row in rows}:
        dev = [row for row in rows if row["half"] == "dev"
               and (row["embedder"], row["algorithm"]) == key]
        choice = max(dev, key=lambda row: row["f_measure"])
        best[key] = next(row for row in rows if row["half"] == "test"
                         and (row["embedder"], row["algorithm"]) == key
                         and row["threshold"] == choice["threshold"])
    save("faces_clustering", {"dataset": dataset.name, "images": len(dataset.images),
                              "embedders": settings,
                              "protocol": "threshold chosen on even identities (dev), "
                                          "reported on odd identities (test)",
                              "face": "central"}, rows)
    columns = ["embedder", "half", "algorithm", "threshold", "precision", "recall",
               "f_measure", "clusters", "true_clusters", "splits", "merges", "seconds"]
    print(markdown_table(sorted(best.values(), key=lambda row: -row["f_measure"]), columns))


def cluster_rows(embedder: str, vectors: np.ndarray, truth: np.ndarray,
                 thresholds: list[float]) -> list[dict[str, Any]]:
    halves = {"dev": truth % 2 == 0, "test": truth % 2 == 1}
    rows = []
    for algorithm in ["chinese-whispers", "agglomerative"]:
        for threshold in thresholds:
            for half, chosen in halves.items():
                started = time.perf_counter()
                labels = cluster_faces(vectors[chosen], threshold, algorithm)
                seconds = time.perf_counter() - started
                rows.append({"embedder": embedder, "half": half, "algorithm": algorithm,
                             "threshold": threshold,
                             **metrics.pairwise_clustering_scores(truth[chosen], labels),
                             "seconds": round(seconds, 2)})
                print(rows[-1], flush=True)
    for threshold in thresholds:  # the original weighting, for comparison
        for half, chosen in halves.items():
            labels = chinese_whispers(vectors[chosen], threshold, weighting="similarity")
            rows.append({"embedder": embedder, "half": half,
                         "algorithm": "chinese-whispers, similarity weights",
                         "threshold": threshold,
                         **metrics.pairwise_clustering_scores(truth[chosen], labels)})
    for half, chosen in halves.items():
        rows += [{"embedder": embedder, "half": half, **row}
                 for row in hdbscan_rows(vectors[chosen], truth[chosen])]
    return rows


def hdbscan_rows(vectors: np.ndarray, truth: np.ndarray) -> list[dict[str, Any]]:
    """scikit-learn's HDBSCAN, for comparison only (not a Lookalike dependency)."""
    try:
        from sklearn.cluster import HDBSCAN
    except ImportError:
        print("scikit-learn is not installed: HDBSCAN skipped")
        return []
    rows = []
    for min_cluster in (2, 3):
        started = time.perf_counter()
        labels = HDBSCAN(min_cluster_size=min_cluster, min_samples=1).fit_predict(vectors)
        seconds = time.perf_counter() - started
        # Noise (-1) is a cluster of one per face, as a photo manager would show it.
        noise = labels < 0
        labels[noise] = labels.max() + 1 + np.arange(int(noise.sum()))
        rows.append({"algorithm": f"hdbscan (min_cluster_size={min_cluster})",
                     "threshold": None, **metrics.pairwise_clustering_scores(truth, labels),
                     "seconds": round(seconds, 2)})
        print(rows[-1], flush=True)
    return rows


# -- speed ----------------------------------------------------------------------------------------

def synthetic_faces(n: int, people: int, seed: int) -> np.ndarray:
    """Unit 128-d vectors in identity clusters (within-person cosine about 0.93, as dlib's)."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(people, 128)).astype(np.float32)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    out = np.empty((n, 128), dtype=np.float32)
    for start in range(0, n, 100_000):
        stop = min(n, start + 100_000)
        who = rng.integers(0, people, size=stop - start)
        block = centres[who] + rng.normal(scale=0.033, size=(stop - start, 128))
        out[start:stop] = block / np.linalg.norm(block, axis=1, keepdims=True)
    return out


def embed_speed(images: list[np.ndarray], embedders: list[str]) -> list[dict[str, Any]]:
    """Align + embed of the central faces of LFW images, one face or 16 a call, with one
    thread or two for each model call (ONNX Runtime's intra-op threads; dlib ignores it)."""
    detector = FaceAnalyzer("centerface").load()
    found = [(image, faces[0]) for image in images[:96] if (faces := detector.detect(image))]
    rows = []
    for embedder_name, threads in ((e, t) for e in embedders for t in (1, 2)):
        set_inference_threads(threads)  # before load: sessions take it when created
        try:
            embedder = make_embedder(embedder_name).load()
            frame = embedder.info.frame
            embedder.embed([align_face(image, face, frame) for image, face in found[:16]])
            for batch_size in (1, 16):
                started = time.perf_counter()
                for start in range(0, len(found), batch_size):
                    pairs = found[start:start + batch_size]
                    embedder.embed([align_face(image, face, frame) for image, face in pairs])
                seconds = time.perf_counter() - started
                rows.append({"stage": f"align + embed ({embedder_name}, batch {batch_size}, "
                                      f"{threads} thread{'s' if threads > 1 else ''})",
                             "input": "one face", "ms_per_image": 1000 * seconds / len(found),
                             "faces_per_s": len(found) / seconds})
                print(rows[-1], flush=True)
        finally:
            set_inference_threads(None)
    return rows


def speed(data: Path, embedders: list[str]) -> None:
    rows: list[dict[str, Any]] = []
    lfw = load_lfw_pairs(data / "lfw", "pairsDevTest.txt").images[:200]
    images = [load_image(path) for path in lfw]
    astronaut = np.asarray(skimage_data.astronaut())  # type: ignore[no-untyped-call]
    photo = np.asarray(Image.fromarray(astronaut).resize((1920, 1920)))
    for detector in DETECTORS:
        analyzer = FaceAnalyzer(detector).load()
        for label, batch in (("LFW 250x250", images), ("photo 1920x1920", [photo] * 20)):
            analyzer.detect(batch[0])
            started = time.perf_counter()
            count = sum(len(analyzer.detect(image)) for image in batch)
            seconds = time.perf_counter() - started
            rows.append({"stage": f"detect ({detector})", "input": label,
                         "ms_per_image": 1000 * seconds / len(batch),
                         "faces_per_s": count / seconds})
            print(rows[-1], flush=True)
    rows += embed_speed(images, embedders)
    search_rows = face_search_latency(Path(tempfile.mkdtemp(prefix="lookalike-faces-")))
    save("faces_speed", {"detect_side": 640, "lfw_images": len(images)}, rows + search_rows)
    print(markdown_table(rows, ["stage", "input", "ms_per_image", "faces_per_s"]))
    print(markdown_table(search_rows, ["faces", "images", "index", "build_s", "query_ms_p50",
                                       "query_ms_p99", "recall_at_10"]))


def face_search_latency(scratch: Path, sizes: tuple[int, ...] = (10_000, 1_000_000)
                        ) -> list[dict[str, Any]]:
    """k=10 face search through the faces channel (index, fold to the best face per image,
    evidence and people lookup) over synthetic faces, 3 per image, stored in a real
    catalog. ``auto`` searches exactly below 50,000 faces and with HNSW above; recall@10
    is against the exact per-image ranking."""
    rows = []
    for n in sizes:
        base = synthetic_faces(n, people=max(n // 20, 10), seed=1)
        images = np.arange(n) // 3 + 1  # image ids in order, three faces each
        rng = np.random.default_rng(2)
        picks = rng.choice(n, 200, replace=False)
        # Queries: other photos of stored people (a stored face, perturbed).
        queries = base[picks] + 0.02 * rng.normal(size=(200, 128)).astype(np.float32)
        queries /= np.linalg.norm(queries, axis=1, keepdims=True)
        root = scratch / f"faces-{n}"
        shutil.rmtree(root, ignore_errors=True)
        with Collection(root, channels=["faces"]).open() as collection:
            started = time.perf_counter()
            fill_catalog(collection, base, images)
            filled = time.perf_counter() - started
            channel = check_faces_channel(collection.channel("faces"))
            started = time.perf_counter()
            channel.search_face(queries[0], 10)  # builds the index from the catalog
            build = time.perf_counter() - started
            latencies, recalls = [], []
            first_face = np.searchsorted(images, np.unique(images))
            for query in queries:
                begin = time.perf_counter()
                hits = channel.search_face(query, 10)
                latencies.append(time.perf_counter() - begin)
                best_per_image = np.maximum.reduceat(base @ query, first_face)
                exact = set((np.argsort(-best_per_image)[:10] + 1).tolist())
                recalls.append(len(exact & {hit.image_id for hit in hits}) / 10)
            percentiles = metrics.latency_percentiles(latencies)
            rows.append({"faces": n, "images": int(images[-1]),
                         "index": channel.stats()["index"], "fill_s": round(filled, 1),
                         "build_s": round(build, 1), "query_ms_p50": percentiles["p50_ms"],
                         "query_ms_p99": percentiles["p99_ms"],
                         "recall_at_10": float(np.mean(recalls))})
            print(rows[-1], flush=True)
        shutil.rmtree(root, ignore_errors=True)
    return rows


def fill_catalog(collection: Collection, vectors: np.ndarray, images: np.ndarray) -> None:
    """Store synthetic faces as the faces channel would (vector, box, landmarks, score)."""
    extra = np.zeros((len(vectors), 15), dtype=np.float32)
    extra[:, :4] = (10, 10, 60, 70)
    extra[:, 14] = 0.9
    records = np.hstack([vectors, extra])
    catalog = collection.catalog
    with catalog.transaction() as conn:
        conn.executemany(
            "INSERT INTO images (id, path, status, updated_at) VALUES (?, ?, 'indexed', 0)",
            [(int(i), f"synthetic/{i}.jpg") for i in np.unique(images)])
        conn.executemany("INSERT INTO vectors (channel, image_id, vector) VALUES (?, ?, ?)",
                         [("faces", int(image), row.tobytes())
                          for image, row in zip(images, records, strict=True)])
    collection.channels["faces"].mark_stale()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("what", choices=["calibrate", "quality", "groups", "cluster", "speed",
                                         "embed-speed"])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--people", type=int, default=0)
    parser.add_argument("--detectors", default=",".join(DETECTORS),
                        help="calibrate and quality: comma-separated detectors")
    parser.add_argument("--embedders", default=",".join(EMBEDDERS),
                        help="calibrate, quality, cluster and speed: comma-separated "
                             "face embedders")
    args = parser.parse_args()
    embedders = args.embedders.split(",")
    if args.what == "calibrate":
        calibrate(args.data, args.detectors.split(","), embedders)
    elif args.what == "quality":
        quality(args.data, args.detectors.split(","), embedders)
    elif args.what == "groups":
        groups(args.data)
    elif args.what == "cluster":
        cluster(args.data, args.people or None, embedders)
    elif args.what == "embed-speed":
        images = [load_image(path) for path in
                  load_lfw_pairs(args.data / "lfw", "pairsDevTest.txt").images[:200]]
        rows = embed_speed(images, embedders)
        save("faces_embed_speed", {"faces": "central face of LFW DevTest images"}, rows)
        print(markdown_table(rows, ["stage", "ms_per_image", "faces_per_s"]))
    else:
        speed(args.data, embedders)


if __name__ == "__main__":
    main()
