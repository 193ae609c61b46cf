"""Train your own embedding: a head over a frozen pretrained network, for your classes.

``train_embedding(DATA, "model.onnx")`` computes the network's features of the labelled
images once (cached), fits a projection head with a metric-learning loss
(:mod:`lookalike.training.fit`), and writes one ONNX model with its card
(:mod:`lookalike.training.export`). A collection takes it as its global model with
``extractor="model.onnx"`` (``lookalike index --extractor model.onnx``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lookalike.errors import ValidationError
from lookalike.images import load_image
from lookalike.training.data import LabelledImages, labelled_images
from lookalike.training.export import card_path, export_trained
from lookalike.training.features import Progress, base_extractor, base_features
from lookalike.training.fit import LOSSES, EpochReport, TrainConfig, fit_head

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
    """Train on the labelled images at ``source`` (a folder per class, or a TSV of path and
    label) and write the model to ``out`` (``.onnx``) with its card beside it."""
    config = config or TrainConfig()
    target = Path(out)
    if target.suffix.lower() != ".onnx":
        raise ValidationError(f"expected a model file name ending in .onnx, got {target}")
    started = time.perf_counter()
    images = labelled_images(source)
    base = base_extractor(config.base)
    features = base_features(images, base, progress=progress)
    fitted = fit_head(features.vectors, features.labels, config, on_epoch)
    card = {
        "name": target.stem, "base": base.info.as_dict(), "dim": config.dim,
        "preprocessing": base.preprocessing.as_dict(), "loss": config.loss,
        "settings": config.as_dict(), "data": {
            "source": str(Path(source).resolve()), "fingerprint": images.fingerprint(),
            "images": len(features.labels), "classes": len(set(features.labels)),
            "failed": len(features.failures)},
        "epochs_run": len(fitted.history), "best_epoch": fitted.best_epoch,
        "held_out": fitted.held_out, "validation_classes": fitted.validation_classes,
        "validation": fitted.validation, "base_validation": fitted.base_validation,
        # Whether the head found more of the held-out classes than the network alone.
        "beats_base": _beats(fitted.validation, fitted.base_validation),
        "train_seconds": round(time.perf_counter() - started, 1),
    }
    card["onnx_max_abs_difference"] = export_trained(
        fitted.head, base, target, card, _check_batch(images, features.failures, base))
    return TrainReport(target, card, fitted.history, features.failures)


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
           "train_embedding"]
