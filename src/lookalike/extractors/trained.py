"""A model trained by ``lookalike train``, named by its file: ``--extractor MODEL.onnx``.

The file is one ONNX graph (the base network and the trained head) and the card beside it
(``MODEL.json``) says how to feed it and what comes out. The extractor's version is the
file's checksum, so a collection's manifest pins the very model it was filled with.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from lookalike.errors import ValidationError
from lookalike.extractors.base import ExtractorInfo
from lookalike.extractors.onnx import OnnxExtractor, OnnxModelSpec
from lookalike.extractors.preprocessing import Preprocessing
from lookalike.runtime import session_options

CARD_FORMAT = "lookalike-trained-model"


def is_model_file(name: str) -> bool:
    return name.lower().endswith(".onnx")


class TrainedExtractor(OnnxExtractor):
    """Runs a trained model file (see the module's doc)."""

    def __init__(self, path: str | Path, **params: Any) -> None:
        self.path = Path(path).resolve()
        card = read_card(self.path)
        if card.get("kind") == "faces":
            raise ValidationError(f"{self.path}: expected an image model, got a face model; "
                                  "a faces channel takes it (--face-embedder)")
        digest = hashlib.sha256(self.path.read_bytes()).hexdigest()[:16]
        spec = OnnxModelSpec(
            info=ExtractorInfo(name=str(card["name"]), version=digest, dim=int(card["dim"])),
            preprocessing=Preprocessing(**card["preprocessing"]),
            weights_package="", licence=str(card.get("licence", "")), extra="train")
        super().__init__(spec, **params)
        self.card = card

    def model_path(self) -> Path:
        return self.path

    def _load(self) -> None:
        import onnxruntime as ort

        self._session = ort.InferenceSession(
            str(self.path), sess_options=session_options(self.threads),
            providers=["CPUExecutionProvider"])


def read_card(path: Path) -> dict[str, Any]:
    """The card of a trained model file, checked."""
    card_file = path.with_suffix(".json")
    if not path.is_file():
        raise ValidationError(f"{path}: expected a model file made by lookalike train, found "
                              "no file")
    try:
        card = json.loads(card_file.read_text())
    except (OSError, ValueError) as error:
        raise ValidationError(f"{card_file}: expected the model card of {path.name}, got "
                              f"none that reads ({error})") from error
    # A face model's chips are aligned as its base face network says, not preprocessed.
    needed = ("name", "dim", "base" if isinstance(card, dict) and card.get("kind") == "faces"
              else "preprocessing")
    if not isinstance(card, dict) or card.get("format") != CARD_FORMAT or not all(
            key in card for key in needed):
        raise ValidationError(f"{card_file}: expected a '{CARD_FORMAT}' card with "
                              f"{', '.join(needed)}")
    return card
