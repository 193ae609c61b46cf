"""A trained head and its base network as one ONNX file, checked, with its model card.

The base network's graph (input ``input``, pooled ``features``) and the head's are
joined into one graph whose ``features`` output is the trained embedding, so ONNX Runtime
runs the whole model as it runs the built-in ones. The card beside it (``MODEL.json``)
records what the model is: base network and preprocessing, output dimension, loss,
training data fingerprint, epochs and validation figures, and the largest difference
between ONNX Runtime and torch on the held-out images.
"""

from __future__ import annotations

import json
import tempfile
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from lookalike.errors import ValidationError
from lookalike.extractors import OnnxExtractor
from lookalike.extractors.trained import CARD_FORMAT
from lookalike.paths import atomic_write_bytes


def card_path(model: Path) -> Path:
    """Where the card of ``model`` lives: beside it, ``.json`` for ``.onnx``."""
    return model.with_suffix(".json")


def export_trained(head: Any, base: OnnxExtractor, out: Path, card: dict[str, Any],
                   check_images: np.ndarray) -> float:
    """Write the model to ``out`` and its card beside it; returns the largest absolute
    difference between ONNX Runtime on ``check_images`` (preprocessed NCHW float32) and
    torch on the base network's features of them."""
    import onnx
    import torch

    base.load()
    backbone = onnx.compose.add_prefix(onnx.load(str(base.model_path())), "base/",
                                       rename_inputs=False)
    joined = onnx.compose.merge_models(
        backbone, onnx.compose.add_prefix(_head_graph(head, base.info.dim), "head/",
                                          rename_outputs=False),
        io_map=[("base/features", "head/pooled")], outputs=["features"],
        name=str(card["name"]))
    data = joined.SerializeToString()
    pooled = base.run_network(check_images)
    with torch.no_grad():
        expected = head(torch.from_numpy(pooled)).numpy()
    found = _run(data, check_images)
    difference = float(np.max(np.abs(found - expected))) if len(expected) else 0.0
    if not difference < 1e-3:
        raise ValidationError(f"{out}: expected the exported model to match torch, got a "
                              f"difference of {difference:.3g}")
    atomic_write_bytes(out, data)
    atomic_write_bytes(card_path(out), json.dumps(
        {**card, "format": CARD_FORMAT, "onnx_max_abs_difference": difference},
        indent=2).encode())
    return difference


def _head_graph(head: Any, dim_in: int) -> Any:
    import onnx
    import torch

    with tempfile.TemporaryDirectory(prefix="lookalike-head-") as folder, torch.no_grad(), \
            warnings.catch_warnings():
        warnings.simplefilter("ignore")
        path = Path(folder) / "head.onnx"
        torch.onnx.export(head, (torch.zeros(2, dim_in),), str(path), input_names=["pooled"],
                          output_names=["features"],
                          dynamic_axes={"pooled": {0: "batch"}, "features": {0: "batch"}},
                          opset_version=17, dynamo=False)
        return onnx.load(str(path))


def _run(model: bytes, images: np.ndarray) -> np.ndarray:
    import onnxruntime as ort

    session = ort.InferenceSession(model, providers=["CPUExecutionProvider"])
    (found,) = session.run(["features"], {"input": images})
    return np.asarray(found, dtype=np.float32)
