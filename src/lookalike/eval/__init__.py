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
from lookalike.errors import ValidationError
from lookalike.eval import datasets
from lookalike.eval.runner import (
    EvalSettings,
    Progress,
    evaluate_clustering,
    evaluate_retrieval,
    evaluate_verification,
)

DATASET_NAMES = ["ukbench", "oxford", "lfw", "lfw-people", "orl", "custom"]


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
    if name == "lfw-people":
        if data is None:
            raise ValidationError("expected --data DIR for the lfw-people dataset, got none")
        people = datasets.load_lfw_people(data, max_people=max_people)
        return evaluate_clustering(people, settings, progress)
    dataset = _load(name, data=data, root=root, truth=truth, pairs=pairs, crop=crop)
    if isinstance(dataset, datasets.VerificationDataset):
        return evaluate_verification(dataset, settings, progress)
    return evaluate_retrieval(dataset, settings, progress)


def _load(
    name: str, *, data: Path | None, root: Path | None, truth: Path | None, pairs: Path | None,
    crop: bool,
) -> datasets.RetrievalDataset | datasets.VerificationDataset:
    if name == "custom":
        if root is None or truth is None:
            raise ValidationError("expected --root DIR and --truth TSV for the custom dataset")
        return datasets.load_custom(root, truth)
    if data is None:
        raise ValidationError(f"expected --data DIR for the {name} dataset, got none")
    if name == "lfw":
        if pairs is None:
            raise ValidationError("expected --pairs FILE for lfw (e.g. pairsDevTest.txt)")
        return datasets.load_lfw_pairs(data, pairs)
    if name == "oxford":
        return datasets.load_oxford(data, crop=crop)
    if name in ("ukbench", "orl"):
        loader = datasets.load_ukbench if name == "ukbench" else datasets.load_orl
        return loader(data)
    raise ValidationError(f"expected a dataset among {', '.join(DATASET_NAMES)}, got '{name}'")


__all__ = ["DATASET_NAMES", "evaluate"]
