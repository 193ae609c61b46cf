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

    base.load()
    return export_joined(head, (onnx.load(str(base.model_path())), "features", base.info.dim),
                         out, card, check_images, base.run_network(check_images))


def export_joined(head: Any, backbone: tuple[Any, str, int], out: Path, card: dict[str, Any],
                  check_input: np.ndarray, base_outputs: np.ndarray) -> float:
    """Join ``backbone`` (an ONNX model, the name of the output the head reads, its
    dimension) and the head into one graph whose output is ``features``; write it to
    ``out`` with its card once ONNX Runtime on ``check_input`` matches torch's head on
    ``base_outputs`` (the backbone's outputs for it). Returns the largest difference."""
    import onnx
    import torch

    network, output, dim_in = backbone
    head_graph = _head_graph(head, dim_in, _opset(network))
    head_graph.ir_version = network.ir_version
    joined = onnx.compose.merge_models(
        onnx.compose.add_prefix(network, "base/", rename_inputs=False),
        onnx.compose.add_prefix(head_graph, "head/", rename_outputs=False),
        io_map=[(f"base/{output}", "head/pooled")], outputs=["features"],
        name=str(card["name"]))
    data = joined.SerializeToString()
    with torch.no_grad():
        expected = head(torch.from_numpy(np.ascontiguousarray(base_outputs))).numpy()
    return _write_checked(data, out, card, check_input, expected)


def export_whole(network: Any, out: Path, card: dict[str, Any], check_images: np.ndarray
                 ) -> float:
    """Write a whole torch ``network`` (preprocessed images in, embedding out) as ONNX to
    ``out`` with its card, once ONNX Runtime matches torch on ``check_images``."""
    import torch

    with tempfile.TemporaryDirectory(prefix="lookalike-tuned-") as folder, torch.no_grad(), \
            warnings.catch_warnings():
        warnings.simplefilter("ignore")
        path = Path(folder) / "tuned.onnx"
        torch.onnx.export(network, (torch.from_numpy(check_images[:2]),), str(path),
                          input_names=["input"], output_names=["features"],
                          dynamic_axes={"input": {0: "batch"}, "features": {0: "batch"}},
                          opset_version=17, dynamo=False)
        data = path.read_bytes()
        expected = network(torch.from_numpy(check_images)).numpy()
    return _write_checked(data, out, card, check_images, expected)


def _write_checked(data: bytes, out: Path, card: dict[str, Any], check_input: np.ndarray,
                   expected: np.ndarray) -> float:
    found = _run(data, check_input)
    difference = float(np.max(np.abs(found - expected))) if len(expected) else 0.0
    if not difference < 1e-3:
        raise ValidationError(f"{out}: expected the exported model to match torch, got a "
                              f"difference of {difference:.3g}")
    atomic_write_bytes(out, data)
    atomic_write_bytes(card_path(out), json.dumps(
        {**card, "format": CARD_FORMAT, "onnx_max_abs_difference": difference},
        indent=2).encode())
    return difference


def _opset(model: Any) -> int:
    """The ONNX operator set the model's default domain uses."""
    return int(next(entry.version for entry in model.opset_import
                    if entry.domain in ("", "ai.onnx")))


def _head_graph(head: Any, dim_in: int, opset: int) -> Any:
    import onnx
    import torch

    with tempfile.TemporaryDirectory(prefix="lookalike-head-") as folder, torch.no_grad(), \
            warnings.catch_warnings():
        warnings.simplefilter("ignore")
        path = Path(folder) / "head.onnx"
        torch.onnx.export(head, (torch.zeros(2, dim_in),), str(path), input_names=["pooled"],
                          output_names=["features"],
                          dynamic_axes={"pooled": {0: "batch"}, "features": {0: "batch"}},
                          opset_version=max(opset, 11), dynamo=False)
        return onnx.load(str(path))


def _run(model: bytes, images: np.ndarray) -> np.ndarray:
    import onnxruntime as ort

    session = ort.InferenceSession(model, providers=["CPUExecutionProvider"])
    (found,) = session.run(["features"], {session.get_inputs()[0].name: images})
    return np.asarray(found, dtype=np.float32)
