"""Evaluation on public benchmarks with the protocols and metrics papers report.

``evaluate("ukbench", data=...)`` loads the dataset, indexes its database into a
cached collection and returns one flat dict of metrics (the CLI's ``--json``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lookalike.collection import (
    FacesChannelConfig,
    GlobalChannelConfig,
    LocalChannelConfig,
    RegionsChannelConfig,
    TextChannelConfig,
)
from lookalike.eval import datasets
from lookalike.eval.runner import (
    EvalSettings,
    Progress,
    evaluate_clustering,
    evaluate_retrieval,
    evaluate_verification,
)

#: The data sets ``evaluate`` runs (the CLI's choices): every registered one, plug-ins
#: included, since a spec says which inputs its loader takes.
DATASET_NAMES: list[str] = datasets.available_datasets()


def evaluate(
    name: str, *, config: GlobalChannelConfig | None = None, channel: str = "global",
    collection: Path | None = None, data: Path | None = None, root: Path | None = None,
    truth: Path | None = None, pairs: Path | None = None, crop: bool = True,
    progress: Progress | None = None, local_config: LocalChannelConfig | None = None,
    faces_config: FacesChannelConfig | None = None, max_people: int | None = None,
    regions_config: RegionsChannelConfig | None = None,
    text_config: TextChannelConfig | None = None, fusion: str = "auto",
    auto_channels: tuple[str, ...] | None = None,
) -> dict[str, Any]:
    """Run benchmark ``name`` (one of :data:`DATASET_NAMES`) and return its metrics.

    ``channel`` is global, local, faces, regions, text or auto (``auto_channels``,
    default global, local, regions and text: each alone and every fusion side by side,
    with ``fusion`` as the headline);
    ``local_config`` sets the local channel up (a tree file trained elsewhere, the
    scoring, verification), ``faces_config`` the faces channel (the detector).
    ``lfw-people`` clusters faces into people (``max_people`` takes a subset).
    """
    settings = EvalSettings(config=config or GlobalChannelConfig(), channel=channel,
                            collection=collection, local=local_config, faces=faces_config,
                            regions=regions_config, text=text_config, fusion=fusion,
                            **({"auto_channels": auto_channels} if auto_channels else {}))
    dataset = datasets.load_dataset(name, data=data, root=root, truth=truth, pairs=pairs,
                                    crop=crop, max_people=max_people)
    if isinstance(dataset, datasets.ClusteringDataset):
        return evaluate_clustering(dataset, settings, progress)
    if isinstance(dataset, datasets.VerificationDataset):
        return evaluate_verification(dataset, settings, progress)
    return evaluate_retrieval(dataset, settings, progress)


__all__ = ["DATASET_NAMES", "evaluate"]
