"""Face and pair benchmarks: verification accuracy (the LFW protocol) and people clustering.

Each image is represented by its central face (faces channel) or its whole-image vector
(global channel); a pair whose face was not found counts as an error, never as a free
"different"; clustering is scored by pairwise precision, recall and F against the truth.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from lookalike.collection import Collection, FacesChannel, VectorChannel
from lookalike.collection.faces_channel import check_faces_channel
from lookalike.errors import ValidationError
from lookalike.eval import metrics
from lookalike.eval.datasets import ClusteringDataset, VerificationDataset, VerificationPair
from lookalike.eval.settings import EvalSettings, Progress, build_collection, common_report
from lookalike.faces import central_face
from lookalike.faces.cluster import CLUSTERERS, cluster_faces
from lookalike.images import load_image
from lookalike.paths import catalog_key

_TIMED = 50  # pairs timed end to end for the verification latency


def evaluate_verification(
    dataset: VerificationDataset, settings: EvalSettings, progress: Progress | None = None
) -> dict[str, Any]:
    """Pair verification by cosine similarity, k-fold accuracy as in the LFW protocol.

    With the faces channel each image is represented by its face nearest the
    centre; a pair with an image where no face was found counts as an error (it
    is never dropped), and the failures are reported.
    """
    if settings.channel not in ("global", "faces"):
        raise ValidationError(f"expected the global or faces channel for pair verification on "
                              f"{dataset.name}, got '{settings.channel}'")
    files = dataset.images
    collection, throughput = build_collection(dataset.name, files, settings, progress)
    extra: dict[str, Any] = {}
    try:
        channel = collection.channel(settings.channel)
        if not isinstance(channel, VectorChannel):
            raise ValidationError(f"expected a channel of vectors, got '{settings.channel}'")
        keys = [catalog_key(path) for path in files]
        if isinstance(channel, FacesChannel):
            vectors, found = central_face_vectors(collection, channel, keys)
            extra["images_without_face"] = int(np.sum(~found))
        else:
            vectors = collection.vectors(keys, channel=channel.name)
            found = np.ones(len(files), dtype=bool)
        latencies = [_time_one_verification(channel, pair) for pair in dataset.pairs[:_TIMED]]
    finally:
        collection.close()
    row = {path: i for i, path in enumerate(files)}
    first = np.array([row[pair.a] for pair in dataset.pairs])
    second = np.array([row[pair.b] for pair in dataset.pairs])
    both = found[first] & found[second]
    same = np.array([pair.same for pair in dataset.pairs])
    # A pair whose face was not found scores the opposite of its truth, so it counts as
    # an error at any threshold: never dropped, never a free "different".
    scores = np.where(both, np.sum(vectors[first] * vectors[second], axis=1),
                      np.where(same, -1.0, 1.0))
    if isinstance(channel, FacesChannel):
        extra["pairs_with_failure"] = int(np.sum(~both))
    folds = np.array([pair.fold for pair in dataset.pairs])
    accuracy, spread, thresholds = metrics.verification_accuracy_kfold(scores, same, folds)
    return {
        "dataset": dataset.name, "accuracy": accuracy, "accuracy_std": spread,
        "threshold_mean": float(np.mean(thresholds)), "n_pairs": len(dataset.pairs), **extra,
        **common_report(len(dataset.pairs), throughput, latencies, settings),
    }


def central_face_vectors(
    collection: Collection, channel: FacesChannel, keys: list[str]
) -> tuple[np.ndarray, np.ndarray]:
    """Each image's central face vector (zeros where none), and which images had a face."""
    records = collection.catalog.images.by_path(keys)
    faces = channel.faces_of_images([record.id for record in records.values()])
    vectors = np.zeros((len(keys), channel.dim), dtype=np.float32)
    found = np.zeros(len(keys), dtype=bool)
    for i, key in enumerate(keys):
        record = records.get(key)
        candidates = faces.get(record.id, []) if record else []
        if candidates and record is not None:
            pick = central_face([c.face for c in candidates], record.width or 0,
                                record.height or 0)
            vectors[i], found[i] = candidates[pick].vector, True
    return vectors, found


def dataset_face_vectors(
    dataset: ClusteringDataset, settings: EvalSettings, progress: Progress | None = None
) -> tuple[np.ndarray, np.ndarray, float]:
    """Index the dataset's images into the (cached) faces collection; each image's central
    face vector, which images had a face, and the indexing images/s."""
    collection, throughput = build_collection(dataset.name, dataset.images, settings, progress)
    try:
        channel = check_faces_channel(collection.channel("faces"))
        vectors, found = central_face_vectors(
            collection, channel, [catalog_key(path) for path in dataset.images])
    finally:
        collection.close()
    return vectors, found, throughput


def evaluate_clustering(
    dataset: ClusteringDataset, settings: EvalSettings, progress: Progress | None = None,
    algorithms: tuple[str, ...] = tuple(CLUSTERERS), threshold: float | None = None,
) -> dict[str, Any]:
    """People clustering: each image's central face, clustered without labels, scored by
    pairwise precision/recall/F against the identities. Images without a face are left
    out of the clustering and counted."""
    if settings.channel != "faces":
        raise ValidationError(f"expected the faces channel for clustering {dataset.name}, got "
                              f"'{settings.channel}'")
    vectors, found, throughput = dataset_face_vectors(dataset, settings, progress)
    faces = settings.config("faces")
    limit = faces.same_person_cluster if threshold is None else threshold
    truth = np.array(dataset.labels)[found]
    rows = {}
    for algorithm in algorithms:
        started = time.perf_counter()
        labels = cluster_faces(vectors[found], limit, algorithm)
        scores = metrics.pairwise_clustering_scores(truth, labels)
        rows[algorithm] = {**scores, "seconds": round(time.perf_counter() - started, 3)}
    return {"dataset": dataset.name, "images": len(dataset.images),
            "images_without_face": int(np.sum(~found)), "threshold": limit,
            "algorithms": rows, "index_images_per_s": round(throughput, 2),
            "channel": settings.channel, "detector": faces.detector}


def _time_one_verification(channel: VectorChannel, pair: VerificationPair) -> float:
    """Seconds to verify one pair from scratch: decode and embed both images, compare."""
    started = time.perf_counter()
    first, second = (channel.embed_query(load_image(path)) for path in (pair.a, pair.b))
    if first.size and second.size:
        float(np.max(first @ second.T))
    return time.perf_counter() - started
