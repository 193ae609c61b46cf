"""Retrieval benchmarks: every query searched, scored with the metrics papers report.

mAP (the official Oxford protocol: junk ignored), top-1, recall@1/5/10 and, when every
query has four relevant images, the UKBench N-S score. With ``auto``, each channel's
ranking is computed once per query, then scored alone and fused every way side by side,
the trained fusions on disjoint halves of the queries.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np

from lookalike.collection import Collection, auto_fusion
from lookalike.collection.learning import judge
from lookalike.errors import (
    LookalikeError,
    MissingDependencyError,
    NothingToSearchError,
    ValidationError,
)
from lookalike.eval import metrics
from lookalike.eval.datasets import RetrievalDataset, RetrievalQuery
from lookalike.eval.settings import EvalSettings, Progress, build_collection, common_report
from lookalike.fusion import (
    rank_fusion,
    reciprocal_rank_fusion,
    trusted_fusion,
    weighted_score_fusion,
)
from lookalike.paths import catalog_key
from lookalike.progress import counted
from lookalike.ranking import train_ranker
from lookalike.results import Hit

FUSION_DEPTH = 1000  # hits kept per channel and query for fusing (a relevant image lower
# down counts as not found, in every method alike)
_HEADLINE = {"learned": "learned-cv", "weighted": "weighted-platt-cv", "rrf": "rrf",
             "auto": "auto"}


def evaluate_retrieval(dataset: RetrievalDataset, settings: EvalSettings,
                       progress: Progress | None = None) -> dict[str, Any]:
    """mAP, top-1, recall@1/5/10 and (when every query has 4 relevant) the N-S score."""
    collection, throughput = build_collection(dataset.name, dataset.database, settings, progress)
    per_query: list[dict[str, list[Hit]]] = []
    scores: list[dict[str, float]] = []
    latencies: list[float] = []
    faceless = 0
    try:
        paths = {record.id: record.path for record in collection.images()}
        for query, rankings, seconds in _searched(collection, dataset, settings):
            latencies.append(seconds)
            faceless += rankings is None
            if settings.channel == "auto":
                per_query.append({name: hits[:FUSION_DEPTH]
                                  for name, hits in (rankings or {}).items()})
            else:  # scored at once: a full ranking per query would not fit at scale
                scores.append(_query_scores(query, (rankings or {}).get(settings.channel, []),
                                            paths))
    finally:
        collection.close()
    report: dict[str, Any] = (
        _fusions_side_by_side(per_query, dataset, paths, settings.fusion)
        if settings.channel == "auto" else {"dataset": dataset.name, **_mean_scores(scores)})
    if not dataset.ns_applicable:
        report.pop("ns_score", None)
        for row in report.get("by_method", {}).values():
            row.pop("ns_score", None)
    if settings.channel == "faces":
        report["queries_without_face"] = faceless
    return {**report, **common_report(len(dataset.queries), throughput, latencies, settings)}


def _searched(collection: Collection, dataset: RetrievalDataset, settings: EvalSettings
              ) -> Iterator[tuple[RetrievalQuery, dict[str, list[Hit]] | None, float]]:
    """Each query, its rankings over the whole database, and the seconds it took; None for
    a query with nothing to search by (no face), which is scored as one that found
    nothing, never dropped."""
    depth = len(dataset.database)
    for query in counted("searching the queries", dataset.queries, len(dataset.queries)):
        started = time.perf_counter()
        rankings: dict[str, list[Hit]] | None
        try:
            image = collection.decode_query(query.path, channel=settings.channel, box=query.box)
            rankings = collection.rankings(image, k=depth, channel=settings.channel,
                                           box=query.box)
        except NothingToSearchError:
            rankings = None
        yield query, rankings, time.perf_counter() - started


def _fusions_side_by_side(per_query: list[dict[str, list[Hit]]], dataset: RetrievalDataset,
                          paths: dict[int, str], fusion: str) -> dict[str, Any]:
    methods, unavailable = fused_rankings(per_query, dataset, paths)
    by_method = {name: _mean_scores([_query_scores(query, hits, paths) for query, hits
                                     in zip(dataset.queries, rankings, strict=True)])
                 for name, rankings in methods.items()}
    chosen = _HEADLINE[fusion]
    if chosen not in by_method:
        raise LookalikeError(f"the {chosen} fusion could not be measured: "
                             f"{unavailable.get(chosen, 'unknown reason')}")
    return {"dataset": dataset.name, **by_method[chosen], "fusion": chosen,
            "by_method": by_method, **({"unavailable": unavailable} if unavailable else {})}


def _query_scores(query: RetrievalQuery, hits: Sequence[Hit],
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


def fused_rankings(per_query: list[dict[str, list[Hit]]], dataset: RetrievalDataset,
                   paths: dict[int, str]
                   ) -> tuple[dict[str, list[list[Hit]]], dict[str, str]]:
    """Each channel alone and each fusion, one ranking per query; and the trained fusions
    that could not be measured, with the reason (no scikit-learn, a fold without a
    relevant candidate)."""
    channels = sorted({name for rankings in per_query for name in rankings})
    methods: dict[str, list[list[Hit]]] = {
        name: [rankings.get(name, []) for rankings in per_query] for name in channels}
    methods["rrf"] = [reciprocal_rank_fusion(rankings) if rankings else []
                      for rankings in per_query]
    # What Collection.search does untrained by default (these queries have no text), and
    # the same without putting settled matches first (the default before issue 18).
    policy = auto_fusion()
    methods["auto"] = [trusted_fusion(policy.rankings(rankings, has_ranker=False))
                       if rankings else [] for rankings in per_query]
    # The untrained default before the shipped channel weights (issue 18).
    methods["auto-equal-votes"] = [rank_fusion(policy.rankings(rankings, has_ranker=False))
                                   if rankings else [] for rankings in per_query]
    if len(channels) > 2:
        for left_out in channels:  # what each channel adds to the fusion
            methods[f"rrf-without-{left_out}"] = [
                reciprocal_rank_fusion({name: hits for name, hits in rankings.items()
                                        if name != left_out}) for rankings in per_query]
    methods["weighted-minmax"] = [weighted_score_fusion(rankings) for rankings in per_query]
    try:
        methods.update(_trained_fusions(per_query, dataset, paths))
    except (ValidationError, MissingDependencyError) as error:
        return methods, {"weighted-platt-cv": str(error), "learned-cv": str(error)}
    return methods, {}


def _trained_fusions(per_query: Sequence[Mapping[str, Sequence[Hit]]],
                     dataset: RetrievalDataset, paths: dict[int, str]
                     ) -> dict[str, list[list[Hit]]]:
    """The learned ranker and the Platt-weighted fusion, each trained on one half of the
    queries and scored on the other, both ways (never on a query they saw)."""
    ids = {path: image_id for image_id, path in paths.items()}
    judged = [judge(rankings, query.relevant, query.junk, ids)
              for query, rankings in zip(dataset.queries, per_query, strict=True)]
    folds = [i % 2 for i in range(len(per_query))]
    learned: list[list[Hit]] = [[] for _ in per_query]
    weighted: list[list[Hit]] = [[] for _ in per_query]
    for fold in (0, 1):
        train = [sample for sample, f in zip(judged, folds, strict=True) if f != fold]
        if not train:
            raise ValidationError("expected at least two queries to train on one half")
        ranker = train_ranker(train)  # fits the Platt calibrations as well
        for i, rankings in enumerate(per_query):
            if folds[i] == fold:
                learned[i] = ranker.rank(rankings)
                weighted[i] = weighted_score_fusion(rankings, calibrations=ranker.calibrations)
    return {"weighted-platt-cv": weighted, "learned-cv": learned}
