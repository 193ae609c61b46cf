"""Evaluation on public benchmarks with the protocols and metrics papers report.

``evaluate("ukbench", data=...)`` loads the dataset, indexes its database into a
cached collection and returns one flat dict of metrics (the CLI's ``--json``).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from lookalike.eval import datasets
from lookalike.eval.classes import evaluate_classes
from lookalike.eval.datasets import load_custom
from lookalike.eval.retrieval import evaluate_retrieval
from lookalike.eval.settings import EvalSettings, Progress, default_auto_channels
from lookalike.eval.verification import evaluate_clustering, evaluate_verification

#: The data sets ``evaluate`` runs (the CLI's choices): every registered one, plug-ins
#: included, since a spec says which inputs its loader takes.
DATASET_NAMES: list[str] = datasets.available_datasets()


def evaluate(
    name: str, *, channel: str = "global", configs: Mapping[str, Any] | None = None,
    collection: Path | None = None, data: Path | None = None, root: Path | None = None,
    truth: Path | None = None, pairs: Path | None = None, crop: bool = True,
    progress: Progress | None = None, max_people: int | None = None, fusion: str = "auto",
    auto_channels: tuple[str, ...] | None = None,
) -> dict[str, Any]:
    """Run benchmark ``name`` (one of :data:`DATASET_NAMES`) and return its metrics.

    ``channel`` is a channel's name, or auto (``auto_channels``, default global, local,
    regions and text: each alone and every fusion side by side, with ``fusion`` as the
    headline). ``configs`` gives channels their settings by name (the global channel's
    model, a tree file for the local channel, the face detector); the others keep their
    defaults. ``lfw-people`` clusters faces into people (``max_people`` takes a subset).
    ``classes`` (a folder per class) reports Recall@1/2/4/8 and MAP@R of the global
    channel's model, every image querying all the others.
    """
    settings = EvalSettings(channel=channel, configs=configs or {}, collection=collection,
                            fusion=fusion, auto_channels=auto_channels or ())
    dataset = datasets.load_dataset(name, data=data, root=root, truth=truth, pairs=pairs,
                                    crop=crop, max_people=max_people)
    if isinstance(dataset, datasets.ClusteringDataset):
        return evaluate_clustering(dataset, settings, progress)
    if isinstance(dataset, datasets.VerificationDataset):
        return evaluate_verification(dataset, settings, progress)
    if isinstance(dataset, datasets.ClassesDataset):
        return evaluate_classes(dataset, settings, progress)
    return evaluate_retrieval(dataset, settings, progress)


__all__ = ["DATASET_NAMES", "EvalSettings", "default_auto_channels", "evaluate", "load_custom"]
