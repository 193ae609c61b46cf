"""The metric-learning protocol on a folder per class: Recall@K and MAP@R.

The images are indexed into a cached collection with the global channel (the model under
test: a built-in one, or one trained by ``lookalike train``), and every image then queries
all the others with its stored vector, exactly (one matrix product per block of queries),
as CUB-200, Cars196 and Stanford Online Products report it.
"""

from __future__ import annotations

import time
from typing import Any

from lookalike.errors import ValidationError
from lookalike.eval.class_metrics import class_retrieval_scores
from lookalike.eval.datasets import ClassesDataset
from lookalike.eval.settings import EvalSettings, Progress, build_collection, common_report
from lookalike.paths import catalog_key

#: The K of the Recall@K reported (as the benchmarks report them).
RECALL_KS = (1, 2, 4, 8)


def evaluate_classes(dataset: ClassesDataset, settings: EvalSettings,
                     progress: Progress | None = None) -> dict[str, Any]:
    """Recall@1/2/4/8 and MAP@R of the global channel's vectors over ``dataset``."""
    if settings.channel != "global":
        raise ValidationError(f"expected the global channel for the classes protocol (one "
                              f"vector per image), got '{settings.channel}'")
    collection, throughput = build_collection(dataset.name, dataset.images, settings, progress)
    try:
        vectors = collection.vectors([catalog_key(str(path)) for path in dataset.images])
    finally:
        collection.close()
    started = time.perf_counter()
    scores = class_retrieval_scores(vectors, dataset.labels, ks=RECALL_KS)
    seconds = time.perf_counter() - started
    queries = sum(1 for label in dataset.labels if dataset.labels.count(label) > 1)
    return {"dataset": dataset.name, **scores, "images": len(dataset.images),
            "classes": dataset.classes, "dim": int(vectors.shape[1]),
            **common_report(queries, throughput, [seconds / max(queries, 1)], settings)}
