"""Run a benchmark protocol against a collection and report the metrics papers use.

Datasets come from :mod:`lookalike.eval.datasets`, metrics from
:mod:`lookalike.eval.metrics` (pure functions). The database is indexed into a
collection that is cached between runs (or given by the caller), so repeated
evaluations only pay for the queries.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from lookalike.collection import (
    Channel,
    Collection,
    FacesChannel,
    FacesChannelConfig,
    GlobalChannelConfig,
    Hit,
    LocalChannelConfig,
    RegionsChannelConfig,
    TextChannelConfig,
)
from lookalike.collection.faces_channel import check_faces_channel
from lookalike.errors import LookalikeError, MissingDependencyError, ValidationError
from lookalike.eval import metrics
from lookalike.eval.datasets import (
    ClusteringDataset,
    RetrievalDataset,
    RetrievalQuery,
    VerificationDataset,
    VerificationPair,
)
from lookalike.extractors.onnx import MODEL_SPECS
from lookalike.faces import NoFaceError, central_face
from lookalike.faces.cluster import CLUSTERERS, cluster_faces
from lookalike.fusion import FUSIONS, reciprocal_rank_fusion, weighted_score_fusion
from lookalike.images import load_image
from lookalike.paths import atomic_write_bytes, cache_dir, catalog_key

Progress = Callable[[int, int], None]
_INDEX_STATS = "eval_index_stats.json"
_TIMED = 50  # pairs timed end to end for the verification latency
FUSION_DEPTH = 1000  # hits kept per channel and query for fusing (a relevant image lower
# down counts as not found, in every method alike)


@dataclass(frozen=True)
class EvalSettings:
    """How to build and search the collection under evaluation.

    The collection gets only the channels the evaluation searches: one, or for ``auto``
    those in ``auto_channels`` (global, local, regions and text by default), whose
    rankings are reported alone and fused every way side by side; ``fusion`` is the
    one reported as the headline figures.
    """

    config: GlobalChannelConfig
    channel: str = "global"
    collection: Path | None = None
    local: LocalChannelConfig | None = None
    faces: FacesChannelConfig | None = None
    regions: RegionsChannelConfig | None = None
    text: TextChannelConfig | None = None
    fusion: str = "auto"
    auto_channels: tuple[str, ...] = ("global", "local", "regions", "text")

    def __post_init__(self) -> None:
        known = ("auto", "faces", "global", "local", "regions", "text")
        if self.channel not in known:
            raise ValidationError(f"expected a channel among {list(known)}, got "
                                  f"'{self.channel}'")
        if self.fusion not in FUSIONS:
            raise ValidationError(f"expected a fusion among {list(FUSIONS)}, got "
                                  f"'{self.fusion}'")
        unknown = [name for name in self.auto_channels if name not in known[1:]]
        if unknown or not self.auto_channels:
            raise ValidationError(f"expected auto channels among {list(known[1:])}, got "
                                  f"{list(self.auto_channels)}")

    @property
    def faces_config(self) -> FacesChannelConfig:
        return self.faces or FacesChannelConfig()

    @property
    def regions_config(self) -> RegionsChannelConfig:
        return self.regions or RegionsChannelConfig(extractor=self.config.extractor)

    @property
    def text_config(self) -> TextChannelConfig:
        # Labels need an ImageNet classifier head; the thumbnail baseline has none.
        labeller = self.config.extractor if self.config.extractor in MODEL_SPECS else (
            TextChannelConfig.extractor)
        return self.text or TextChannelConfig(extractor=labeller)

    @property
    def channels(self) -> list[str]:
        return list(self.auto_channels) if self.channel == "auto" else [self.channel]

    @property
    def local_config(self) -> LocalChannelConfig:
        return self.local or LocalChannelConfig()

    def stored_settings(self) -> dict[str, Any]:
        """What shapes the stored data, hence the cache folder."""
        stored: dict[str, Any] = {}
        if "global" in self.channels:
            stored["global"] = self.config.stored_settings()
        if "local" in self.channels:
            # The tree file too: words from different trees must not share a cache.
            stored["local"] = {**self.local_config.stored_settings(),
                               "vocabulary": self.local_config.vocabulary,
                               "train_descriptors": self.local_config.train_descriptors}
            if self.local_config.seed:  # seed 0 keeps the key it had before seeds existed
                stored["local"]["seed"] = self.local_config.seed
        if "faces" in self.channels:
            stored["faces"] = self.faces_config.stored_settings()
        if "regions" in self.channels:
            stored["regions"] = self.regions_config.stored_settings()
        if "text" in self.channels:
            stored["text"] = self.text_config.stored_settings()
        return stored


def default_collection_dir(
    dataset_name: str, files: tuple[Path, ...], settings: EvalSettings
) -> Path:
    """A cache folder keyed by the dataset's files and the stored-data settings."""
    digest = hashlib.sha1()
    for path in sorted(files):
        digest.update(catalog_key(path).encode())
    stored = settings.stored_settings()
    # Global-only keys stay as they were, so existing caches remain valid.
    key = stored["global"] if list(stored) == ["global"] else stored
    digest.update(json.dumps(key, sort_keys=True).encode())
    return cache_dir() / "eval" / f"{dataset_name}-{digest.hexdigest()[:12]}"


def build_collection(
    name: str, files: tuple[Path, ...], settings: EvalSettings, progress: Progress | None = None
) -> tuple[Collection, float]:
    """Open (and if needed fill) the evaluation collection; returns it and images/s."""
    root = settings.collection or default_collection_dir(name, files, settings)
    collection = Collection(
        root, channels=settings.channels,
        global_config=settings.config if "global" in settings.channels else None,
        local_config=settings.local_config if "local" in settings.channels else None,
        faces_config=settings.faces_config if "faces" in settings.channels else None,
        regions_config=settings.regions_config if "regions" in settings.channels else None,
        text_config=settings.text_config if "text" in settings.channels else None).open()
    report = collection.index(list(files), progress=progress)
    stats_path = root / _INDEX_STATS
    if report.processed:
        stats = {"index_images_per_s": report.images_per_s, "stage_seconds": report.stage_seconds,
                 "prepare_seconds": report.prepare_seconds,
                 "images": report.processed}
        atomic_write_bytes(stats_path, json.dumps(stats).encode())
    if report.failures:
        first = "; ".join(f"{path}: {reason}" for path, reason in report.failures[:3])
        raise LookalikeError(f"{len(report.failures)} database images failed to index ({first})")
    collection.save()
    throughput = 0.0
    if stats_path.exists():
        throughput = float(json.loads(stats_path.read_text())["index_images_per_s"])
    return collection, throughput


def evaluate_retrieval(
    dataset: RetrievalDataset, settings: EvalSettings, progress: Progress | None = None
) -> dict[str, Any]:
    """mAP, top-1, recall@1/5/10 and (when every query has 4 relevant) the N-S score.

    With ``auto``, each channel's ranking is computed once per query (the first
    ``FUSION_DEPTH`` hits are kept), then scored alone and fused by every fusion side by
    side (``by_method``); the learned ranker and the Platt-calibrated weighted fusion are
    trained on one half of the queries and scored on the other, both ways (2-fold over
    queries, never on a query they saw)."""
    collection, throughput = build_collection(dataset.name, dataset.database, settings, progress)
    try:
        depth = len(dataset.database)
        paths = {record.id: record.path for record in collection.images()}
        per_query: list[dict[str, list[Hit]]] = []
        scores: list[dict[str, float]] = []
        latencies: list[float] = []
        faceless = 0
        for query in dataset.queries:
            started = time.perf_counter()
            try:
                image = collection.decode_query(query.path, channel=settings.channel,
                                                box=query.box)
                rankings = collection.rankings(image, k=depth, channel=settings.channel,
                                               box=query.box)
            except NoFaceError:
                # Counted and scored as a query that found nothing, never dropped.
                rankings = {}
                faceless += 1
            latencies.append(time.perf_counter() - started)
            if settings.channel == "auto":
                per_query.append({name: hits[:FUSION_DEPTH] for name, hits in rankings.items()})
            else:  # scored at once: a full ranking per query would not fit at scale
                scores.append(_query_scores(query, rankings.get(settings.channel, []), paths))
        if settings.channel == "auto":
            methods, unavailable = _fused_rankings(per_query, dataset, paths)
            by_method = {name: _mean_scores([_query_scores(query, hits, paths) for query, hits
                                             in zip(dataset.queries, rankings, strict=True)])
                         for name, rankings in methods.items()}
            chosen = {"learned": "learned-cv", "weighted": "weighted-platt-cv",
                      "rrf": "rrf", "auto": "auto"}[settings.fusion]
            if chosen not in by_method:
                raise LookalikeError(f"the {chosen} fusion could not be measured: "
                                     f"{unavailable.get(chosen, 'unknown reason')}")
            report: dict[str, Any] = {"dataset": dataset.name, **by_method[chosen],
                                      "fusion": chosen, "by_method": by_method,
                                      **({"unavailable": unavailable} if unavailable else {})}
        else:
            report = {"dataset": dataset.name, **_mean_scores(scores)}
    finally:
        collection.close()
    if not dataset.ns_applicable:
        report.pop("ns_score", None)
        for row in report.get("by_method", {}).values():
            row.pop("ns_score", None)
    if settings.channel == "faces":
        report["queries_without_face"] = faceless
    return {**report, **_common(len(dataset.queries), throughput, latencies, settings)}


def _query_scores(query: RetrievalQuery, hits: list[Hit],
                  paths: dict[int, str]) -> dict[str, float]:
    """The retrieval metrics of one query's ranking (the best hit per image kept)."""
    ranked = list(dict.fromkeys(paths[hit.image_id] for hit in hits if hit.image_id in paths))
    relevant = {catalog_key(path) for path in query.relevant}
    junk = {catalog_key(path) for path in query.junk}
    unjunked = [path for path in ranked if path not in junk]
    return {"map": metrics.average_precision(ranked, relevant, junk),
            "top1": metrics.top1(unjunked, relevant),
            **{f"recall_at_{k}": metrics.recall_at_k(unjunked, relevant, k)
               for k in (1, 5, 10)},
            "ns_score": float(metrics.ns_score(unjunked, relevant))}


def _mean_scores(scores: list[dict[str, float]]) -> dict[str, float]:
    keys = ("map", "top1", "recall_at_1", "recall_at_5", "recall_at_10", "ns_score")
    return {key: float(np.mean([row[key] for row in scores])) if scores else 0.0
            for key in keys}


def _fused_rankings(per_query: list[dict[str, list[Hit]]], dataset: RetrievalDataset,
                    paths: dict[int, str]
                    ) -> tuple[dict[str, list[list[Hit]]], dict[str, str]]:
    """Each channel alone and each fusion, one ranking per query; and the trained fusions
    that could not be measured, with the reason (no scikit-learn, a fold without a
    relevant candidate)."""
    from lookalike.collection.learning import judge
    from lookalike.ranking import train_ranker

    channels = sorted({name for rankings in per_query for name in rankings})
    methods: dict[str, list[list[Hit]]] = {
        name: [rankings.get(name, []) for rankings in per_query] for name in channels}
    methods["rrf"] = [reciprocal_rank_fusion(rankings) if rankings else []
                      for rankings in per_query]
    # What Collection.search does untrained by default: RRF without the text channel's
    # ranking by the query image's own labels (these queries have no text).
    methods["auto"] = [reciprocal_rank_fusion(
        {name: hits for name, hits in rankings.items() if name != "text"} or rankings)
        if rankings else [] for rankings in per_query]
    if len(channels) > 2:
        for left_out in channels:  # what each channel adds to the fusion
            methods[f"rrf-without-{left_out}"] = [
                reciprocal_rank_fusion({name: hits for name, hits in rankings.items()
                                        if name != left_out}) for rankings in per_query]
    methods["weighted-minmax"] = [weighted_score_fusion(rankings) for rankings in per_query]
    ids = {path: image_id for image_id, path in paths.items()}
    judged = [judge(rankings, query.relevant, query.junk, ids)
              for query, rankings in zip(dataset.queries, per_query, strict=True)]
    folds = [i % 2 for i in range(len(per_query))]
    learned: list[list[Hit]] = [[] for _ in per_query]
    weighted: list[list[Hit]] = [[] for _ in per_query]
    try:
        for fold in (0, 1):
            train = [sample for sample, f in zip(judged, folds, strict=True) if f != fold]
            if not train:
                raise ValidationError("expected at least two queries to train on one half")
            ranker = train_ranker(train)  # fits the Platt calibrations as well
            for i, rankings in enumerate(per_query):
                if folds[i] == fold:
                    learned[i] = ranker.rank(rankings)
                    weighted[i] = weighted_score_fusion(rankings,
                                                        calibrations=ranker.calibrations)
    except (ValidationError, MissingDependencyError) as error:
        return methods, {"weighted-platt-cv": str(error), "learned-cv": str(error)}
    methods["weighted-platt-cv"] = weighted
    methods["learned-cv"] = learned
    return methods, {}


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
        **_common(len(dataset.pairs), throughput, latencies, settings),
    }


def central_face_vectors(
    collection: Collection, channel: FacesChannel, keys: list[str]
) -> tuple[np.ndarray, np.ndarray]:
    """Each image's central face vector (zeros where none), and which images had a face."""
    records = collection.catalog.images_by_path(keys)
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
    limit = settings.faces_config.same_person_cluster if threshold is None else threshold
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
            "channel": settings.channel, "detector": settings.faces_config.detector}


def _time_one_verification(channel: Channel, pair: VerificationPair) -> float:
    """Seconds to verify one pair from scratch: decode and embed both images, compare."""
    started = time.perf_counter()
    first, second = (channel.embed_query(load_image(path)) for path in (pair.a, pair.b))
    if first.size and second.size:
        float(np.max(first @ second.T))
    return time.perf_counter() - started


def _common(
    n_queries: int, throughput: float, latencies: list[float], settings: EvalSettings
) -> dict[str, Any]:
    percentiles = metrics.latency_percentiles(latencies)
    common: dict[str, Any] = {
        "n_queries": n_queries,
        "index_images_per_s": round(throughput, 2),
        "query_ms_p50": percentiles["p50_ms"],
        "query_ms_p99": percentiles["p99_ms"],
        "channel": settings.channel,
    }
    if "global" in settings.channels:
        common.update(extractor=settings.config.extractor,
                      whitening=settings.config.whitening_key, index=settings.config.index)
    if "local" in settings.channels:
        local = settings.local_config
        common["local"] = {key: getattr(local, key) for key in (
            "features", "max_features", "branching", "depth", "vocabulary", "seed", "levels",
            "norm", "weighting", "burstiness", "stop_words", "min_level", "verify", "verify_model",
            "min_inliers", "expand")}
    if "faces" in settings.channels:
        faces = settings.faces_config
        common["faces"] = {"detector": faces.detector, "embedder": faces.embedder,
                           "min_score": faces.min_score, "min_face": faces.min_face,
                           "detect_side": faces.detect_side}
    return common
