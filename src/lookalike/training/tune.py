"""Fine-tuning the base network's last blocks with the head (``--tune-blocks N``).

The network is cut before its last ``N`` blocks. The front stays frozen, so its output
for each training image is computed once and cached, as the features are for a head;
the last blocks, the final convolution and the head then train together on those
activations. Batch normalisation keeps the statistics it learnt on ImageNet: P x K
batches of a few classes would make poor estimates. The whole network (front, tuned
tail, head) is exported as one ONNX graph and checked against torch.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from lookalike.errors import MissingDependencyError, ValidationError, expect
from lookalike.extractors import OnnxExtractor
from lookalike.paths import atomic_write_bytes, cache_dir
from lookalike.training.data import LabelledImages
from lookalike.training.features import BaseFeatures, Progress, decoded_batches


@dataclass(frozen=True)
class Split:
    """The frozen front of the network and its trainable tail (activations -> pooled)."""

    front: Any
    tail: Any
    blocks: int


def split_network(name: str, blocks: int) -> Split:
    """Cut the EfficientNet-Lite ``name`` before its last ``blocks`` blocks."""
    expect(name.startswith("efficientnet-lite"), f"expected an efficientnet-lite base to "
                                                 f"fine-tune, got {name!r}")
    try:
        import torch
        from torch import nn

        from lookalike.extractors.export import BUILDERS
    except ImportError as error:
        raise MissingDependencyError(error.name or "torch", "fine-tuning", "train") from error
    network: Any = BUILDERS.get(name)().eval().owner
    count = len(network._blocks)
    expect(1 <= blocks <= count, f"expected 1 to {count} blocks to fine-tune, got {blocks}")

    class Front(nn.Module):
        """The stem and the blocks before the tuned ones; it holds only those layers, so
        freezing it leaves the tail's weights free."""

        def __init__(self) -> None:
            super().__init__()
            self.stem, self.bn0, self.swish = (network._conv_stem, network._bn0,
                                               network._swish)
            self.blocks = nn.ModuleList(network._blocks[:count - blocks])

        def forward(self, x: torch.Tensor) -> Any:
            x = self.swish(self.bn0(self.stem(x)))
            for block in self.blocks:
                x = block(x)
            return x

    class Tail(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.blocks = nn.ModuleList(network._blocks[count - blocks:])
            self.conv_head, self.bn1, self.swish = (network._conv_head, network._bn1,
                                                    network._swish)

        def forward(self, x: torch.Tensor) -> Any:
            for block in self.blocks:
                x = block(x)
            return self.swish(self.bn1(self.conv_head(x))).mean(dim=(2, 3))

        def train(self, mode: bool = True) -> Tail:
            super().train(mode)
            for layer in self.modules():  # ImageNet's statistics stay
                if isinstance(layer, nn.BatchNorm2d):
                    layer.eval()
            return self

    front = Front().eval()
    for parameter in front.parameters():
        parameter.requires_grad_(False)
    return Split(front=front, tail=Tail().eval(), blocks=blocks)


def front_activations(images: LabelledImages, base: OnnxExtractor, split: Split, *,
                      progress: Progress | None = None) -> tuple[np.ndarray, BaseFeatures]:
    """The front's activations of each image that decodes (cached), and the base network's
    pooled features of them (for the head's starting point and the side-by-side)."""
    key = hashlib.sha256(f"{base.info.as_dict()}:{split.blocks}:{images.fingerprint()}"
                         .encode()).hexdigest()[:16]
    path = cache_dir() / "train" / f"front-{base.info.name}-{key}.npz"
    if path.is_file():
        with np.load(path, allow_pickle=False) as cached:
            return cached["activations"], BaseFeatures(
                cached["pooled"], tuple(str(v) for v in cached["labels"]),
                tuple((str(a), str(b)) for a, b in cached["failures"].reshape(-1, 2)))
    activations, pooled, labels, failures = _run_front(images, base, split, progress)
    buffer = io.BytesIO()
    np.savez(buffer, activations=activations, pooled=pooled,
             labels=np.asarray(labels, dtype=str),
             failures=np.asarray(failures, dtype=str).reshape(-1, 2))
    atomic_write_bytes(path, buffer.getvalue())
    return activations, BaseFeatures(pooled, tuple(labels), tuple(failures))


def _run_front(images: LabelledImages, base: OnnxExtractor, split: Split,
               progress: Progress | None
               ) -> tuple[np.ndarray, np.ndarray, list[str], list[tuple[str, str]]]:
    import torch

    fronts: list[np.ndarray] = []
    pooled: list[np.ndarray] = []
    labels: list[str] = []
    failures: list[tuple[str, str]] = []
    side = int(base.preprocessing.resize_shorter)
    for rows, decoded in decoded_batches(images, side, failures, progress):
        labels.extend(images.labels[index] for index in rows)
        with torch.no_grad():
            front = split.front(torch.from_numpy(base.preprocessing(decoded)))
            fronts.append(front.numpy())
            pooled.append(split.tail(front).numpy())
    if not fronts:
        raise ValidationError("expected images that decode to fine-tune on, got none")
    vectors = np.concatenate(pooled)
    vectors /= np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
    return np.concatenate(fronts), vectors, labels, failures


def whole_network(split: Split, tuned: Any) -> Callable[[Any], Any]:
    """The network to export: the frozen front, then the tuned tail and head."""
    from torch import nn

    class Whole(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.front, self.tuned = split.front, tuned

        def forward(self, x: Any) -> Any:
            return self.tuned(self.front(x))

    return Whole().eval()
