"""Train your own embedding: a head over a frozen pretrained network, for your classes.

``train_embedding(DATA, "model.onnx")`` computes the network's features of the labelled
images once (cached), fits a projection head with a metric-learning loss
(:mod:`lookalike.training.fit`), and writes one ONNX model with its card
(:mod:`lookalike.training.export`). A collection takes it as its global model with
``extractor="model.onnx"`` (``lookalike index --extractor model.onnx``).

``train_face_embedding`` does the same for faces (:mod:`lookalike.training.faces`): a head
over a shipped face network, trained on people, for a faces channel
(``lookalike index --face-embedder model.onnx``).
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from lookalike.collection import Collection
from lookalike.errors import ValidationError
from lookalike.extractors import OnnxExtractor
from lookalike.images import load_image
from lookalike.training.data import LabelledImages, labelled_images
from lookalike.training.export import card_path, export_joined, export_trained, export_whole
from lookalike.training.faces import (
    DETECTOR,
    base_graph,
    check_chips,
    face_analyzer,
    face_features,
    face_thresholds,
    named_people,
)
from lookalike.training.features import BaseFeatures, Progress, base_extractor, base_features
from lookalike.training.fit import LOSSES, EpochReport, FitResult, TrainConfig, fit_head
from lookalike.training.tune import front_activations, split_network, whole_network

_CHECKED_IMAGES = 8  # images run through both torch and ONNX Runtime to check the export


@dataclass(frozen=True)
class TrainReport:
    """What a training run made and measured."""

    model: Path
    card: dict[str, Any]
    history: list[dict[str, Any]] = field(default_factory=list)
    failures: tuple[tuple[str, str], ...] = ()

    def as_dict(self) -> dict[str, Any]:
        return {"model": str(self.model), "card": str(card_path(self.model)), **self.card,
                "history": self.history,
                "failures": [{"path": path, "reason": why} for path, why in self.failures]}


def train_embedding(source: str | Path, out: str | Path, config: TrainConfig | None = None, *,
                    progress: Progress | None = None,
                    on_epoch: EpochReport | None = None) -> TrainReport:
    """Train on the labelled images at ``source`` (a folder per class, a TSV of path and
    label, or a collection's categories) and write the model to ``out`` (``.onnx``) with
    its card beside it."""
    config = config or TrainConfig()
    target = _model_file(out)
    started = time.perf_counter()
    images = labelled_images(source)
    base = base_extractor(config.base)
    if config.tune_blocks:
        return _fine_tune(images, source, target, base, config, progress, on_epoch, started)
    features = base_features(images, base, progress=progress)
    fitted = fit_head(features.vectors, features.labels, config, on_epoch)
    card = {**_card(target, source, images, features, config, fitted),
            "base": base.info.as_dict(), "preprocessing": base.preprocessing.as_dict(),
            "train_seconds": round(time.perf_counter() - started, 1)}
    card["onnx_max_abs_difference"] = export_trained(
        fitted.head, base, target, card, _check_batch(images, features.failures, base))
    return TrainReport(target, card, fitted.history, features.failures)


def _fine_tune(images: LabelledImages, source: str | Path, target: Path, base: OnnxExtractor,
               config: TrainConfig, progress: Progress | None,
               on_epoch: EpochReport | None, started: float) -> TrainReport:
    """The last ``config.tune_blocks`` blocks trained with the head (see
    :mod:`lookalike.training.tune`)."""
    split = split_network(config.base, config.tune_blocks)
    activations, features = front_activations(images, base, split, progress=progress)
    fitted = fit_head(features.vectors, features.labels, config, on_epoch, trunk=split.tail,
                      inputs=activations)
    trained = sum(p.numel() for p in fitted.head.parameters() if p.requires_grad)
    card = {**_card(target, source, images, features, config, fitted),
            "base": base.info.as_dict(), "preprocessing": base.preprocessing.as_dict(),
            "tuned_blocks": config.tune_blocks, "trained_parameters": int(trained),
            "train_seconds": round(time.perf_counter() - started, 1)}
    card["onnx_max_abs_difference"] = export_whole(
        whole_network(split, fitted.head), target, card,
        _check_batch(images, features.failures, base))
    return TrainReport(target, card, fitted.history, features.failures)


def train_face_embedding(source: str | Path, out: str | Path,
                         config: TrainConfig | None = None, *,
                         progress: Progress | None = None,
                         on_epoch: EpochReport | None = None) -> TrainReport:
    """Train a face model on the people at ``source`` (a folder per person, a TSV of path
    and name, or a collection's named people) over the face network ``config.base``, and
    write it to ``out`` with its card, ready for a faces channel (``--face-embedder``)."""
    config = config or TrainConfig(base="sface")
    if config.tune_blocks:
        raise ValidationError(f"expected no blocks to fine-tune for a face model (its base, "
                              f"{config.base}, ships as ONNX only), got {config.tune_blocks}")
    target = _model_file(out)
    started = time.perf_counter()
    analyzer = face_analyzer(config.base)
    if Collection.exists(Path(source)):
        features, images = named_people(Path(source), config.base)
        _check_people(source, features.labels)
    else:
        images = labelled_images(source)
        features = face_features(images, analyzer, progress=progress)
        _check_people(source, features.labels)
    fitted = fit_head(features.vectors, features.labels, config, on_epoch)
    calibrated = _calibration_rows(features.labels, fitted)
    embedded = _embed_with(fitted.head, features.vectors[calibrated])
    info = analyzer.embedder.info
    card = {**_card(target, source, images, features, config, fitted), "kind": "faces",
            "base": info.as_dict(), "detector": DETECTOR,
            "thresholds": face_thresholds(embedded, [features.labels[i] for i in calibrated],
                                          config.base, config.seed),
            "train_seconds": round(time.perf_counter() - started, 1)}
    card["thresholds"]["calibrated_on"] = ("held-out people" if fitted.held_out == "classes"
                                           else "the training faces")
    chips = check_chips(images, analyzer)
    card["onnx_max_abs_difference"] = export_joined(
        fitted.head, (*base_graph(config.base), info.dim), target, card,
        np.ascontiguousarray(chips.astype(np.float32).transpose(0, 3, 1, 2)),
        analyzer.embedder.embed(list(chips)))
    return TrainReport(target, card, fitted.history, features.failures)


def _model_file(out: str | Path) -> Path:
    target = Path(out)
    if target.suffix.lower() != ".onnx":
        raise ValidationError(f"expected a model file name ending in .onnx, got {target}")
    return target


def _check_people(source: str | Path, labels: tuple[str, ...]) -> None:
    counts = Counter(labels)
    if sum(count > 1 for count in counts.values()) < 2:
        raise ValidationError(f"{source}: expected at least two people with two faces or "
                              f"more to train on, got {len(labels)} faces of {len(counts)} "
                              "people")


def _calibration_rows(labels: tuple[str, ...], fitted: FitResult) -> list[int]:
    """The faces the thresholds are calibrated on: the held-out people's when people were
    held out, else every face."""
    if fitted.held_out == "classes":
        held = set(fitted.validation_classes)
        return [i for i, label in enumerate(labels) if label in held]
    return list(range(len(labels)))


def _embed_with(head: Any, vectors: np.ndarray) -> np.ndarray:
    import torch

    with torch.no_grad():
        return np.asarray(head(torch.from_numpy(np.ascontiguousarray(vectors))).numpy())


def _card(target: Path, source: str | Path, images: LabelledImages, features: BaseFeatures,
          config: TrainConfig, fitted: FitResult) -> dict[str, Any]:
    """What every trained model's card records: data, settings and held-out figures."""
    return {
        "name": target.stem, "dim": config.dim, "loss": config.loss,
        "settings": config.as_dict(), "data": {
            "source": str(Path(source).resolve()), "fingerprint": images.fingerprint(),
            "images": len(features.labels), "classes": len(set(features.labels)),
            "failed": len(features.failures)},
        "epochs_run": len(fitted.history), "best_epoch": fitted.best_epoch,
        "held_out": fitted.held_out, "validation_classes": fitted.validation_classes,
        "validation": fitted.validation, "base_validation": fitted.base_validation,
        # Whether the head found more of the held-out classes than the network alone.
        "beats_base": _beats(fitted.validation, fitted.base_validation),
    }


def _beats(trained: dict[str, float], base: dict[str, float]) -> bool | None:
    if not trained or not base:
        return None  # no class held out: nothing measured
    return (trained["recall_at_1"], trained["map_at_r"]) > (base["recall_at_1"],
                                                            base["map_at_r"])


def _check_batch(images: LabelledImages, failures: tuple[tuple[str, str], ...],
                 base: Any) -> Any:
    failed = {path for path, _ in failures}
    paths = [path for path in images.paths if str(path) not in failed][:_CHECKED_IMAGES]
    return base.preprocessing([load_image(path) for path in paths])


__all__ = ["LOSSES", "LabelledImages", "TrainConfig", "TrainReport", "labelled_images",
           "train_embedding", "train_face_embedding"]
