"""Training a face model: a head over a shipped face network, for your own people.

The labelled images are the same as for images (a folder per person, a TSV), or a
collection's named people. The base is a face embedder whose network is an ONNX file
(``sface``): each labelled image's largest face is detected, aligned and embedded once
(cached), the head is fitted as for images, and the head and the face network are written
as one ONNX graph. The card carries the alignment and the two thresholds a faces channel
needs (same person, and the stricter one that groups faces into people), calibrated on
the held-out people.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from lookalike.collection import Collection
from lookalike.errors import ImageError, ValidationError, expect
from lookalike.eval.metrics import best_threshold
from lookalike.faces import FaceAnalyzer, align_face, largest_face
from lookalike.faces.embed import sface_model_path
from lookalike.faces.model import CLUSTER_MARGINS
from lookalike.faces.onnx_graph import loosened_model
from lookalike.images import load_image
from lookalike.paths import atomic_write_bytes, cache_dir
from lookalike.training.data import LabelledImages
from lookalike.training.features import BaseFeatures, Progress

# Face embedders whose network is one ONNX file, which the trained model builds on:
# the file's bytes (batch left free) and the name of its embedding output.
FACE_BASES: dict[str, Callable[[], tuple[bytes, str]]] = {
    "sface": lambda: (loosened_model(sface_model_path(), {0: "batch"}, "the SFace base"),
                      "fc1"),
}
DETECTOR = "centerface"  # the faces channel's default detector finds the training faces
_CHECKED_FACES = 8
_CALIBRATION_FACES = 3000  # at most this many faces' pairs calibrate the thresholds


def face_analyzer(base: str) -> FaceAnalyzer:
    expect(base in FACE_BASES, f"expected a face network to train on among "
                               f"{sorted(FACE_BASES)}, got {base!r}")
    return FaceAnalyzer(DETECTOR, base)


def face_features(images: LabelledImages, analyzer: FaceAnalyzer, *,
                  progress: Progress | None = None) -> BaseFeatures:
    """The base embedder's vector of each image's largest face, from the cache when it has
    them; an image without a face is a failure with its reason."""
    info = analyzer.embedder.info
    key = hashlib.sha256(f"{info.as_dict()}:{DETECTOR}:{images.fingerprint()}".encode())
    path = cache_dir() / "train" / f"faces-{info.name}-{key.hexdigest()[:16]}.npz"
    if path.is_file():
        with np.load(path, allow_pickle=False) as cached:
            return BaseFeatures(cached["vectors"],
                                tuple(str(label) for label in cached["labels"]),
                                tuple((str(a), str(b))
                                      for a, b in cached["failures"].reshape(-1, 2)))
    vectors: list[np.ndarray] = []
    labels: list[str] = []
    failures: list[tuple[str, str]] = []
    for done, (image_path, label) in enumerate(zip(images.paths, images.labels, strict=True)):
        try:
            found = analyzer.faces(load_image(image_path))
        except ImageError as error:
            failures.append((str(image_path), error.reason))
            continue
        if found:
            vectors.append(found[largest_face([f.face for f in found])].vector)
            labels.append(label)
        else:
            failures.append((str(image_path), f"no face found (detector {DETECTOR})"))
        if progress is not None:
            progress(done + 1, len(images.paths))
    stacked = np.stack(vectors) if vectors else np.empty((0, info.dim), np.float32)
    buffer = io.BytesIO()
    np.savez(buffer, vectors=stacked, labels=np.asarray(labels, dtype=str),
             failures=np.asarray(failures, dtype=str).reshape(-1, 2))
    atomic_write_bytes(path, buffer.getvalue())
    return BaseFeatures(stacked, tuple(labels), tuple(failures))


def named_people(root: Path, base: str) -> tuple[BaseFeatures, LabelledImages]:
    """The faces of a collection's named people, labelled by name, with the vectors the
    collection holds (its face embedder must be ``base``), and each face's image."""
    with Collection(root).open(create=False) as collection:
        if "faces" not in collection.channels:
            raise ValidationError(f"{root}: expected a collection with a faces channel to "
                                  "train on its named people, got none")
        embedder = collection.people.channel.config.embedder
        expect(embedder == base, f"{root}: expected a collection whose faces were embedded "
                                 f"by {base}, got {embedder}")
        vectors, labels, paths = [], [], []
        for person in collection.people.all():
            if person.name is None:
                continue
            refs = collection.people.faces(person.id)
            stored = collection.people.channel.stored_faces([ref.face_id for ref in refs])
            by_id = {ref.face_id: ref.path for ref in refs}
            for face in stored:
                vectors.append(face.vector)
                labels.append(person.name)
                paths.append(Path(by_id[face.face_id]))
        dim = collection.people.channel.dim
    features = BaseFeatures(np.stack(vectors) if vectors else np.empty((0, dim), np.float32),
                            tuple(labels), ())
    return features, LabelledImages(tuple(paths), tuple(labels))


def check_chips(images: LabelledImages, analyzer: FaceAnalyzer) -> np.ndarray:
    """A few aligned face chips of the training images, for the export's check."""
    chips: list[np.ndarray] = []
    for image_path in images.paths:
        if len(chips) == _CHECKED_FACES:
            break
        try:
            image = load_image(image_path)
        except ImageError:
            continue
        faces = analyzer.detect(image)
        if faces:
            chips.append(align_face(image, faces[largest_face(faces)],
                                    analyzer.embedder.info.frame))
    expect(bool(chips), "expected a face among the training images to check the export "
                        "with, found none")
    return np.stack(chips)


def face_thresholds(embedded: np.ndarray, labels: list[str], base: str,
                    seed: int) -> dict[str, Any]:
    """Same-person and clustering thresholds for the trained embedding: the threshold that
    best separates as many same-person pairs as different-person pairs (drawn, seeded) of
    ``embedded`` (unit rows), plus the base embedder's clustering margin."""
    rng = np.random.default_rng(seed)
    if len(labels) > _CALIBRATION_FACES:  # all pairs of n faces grow as n^2
        kept = np.sort(rng.choice(len(labels), _CALIBRATION_FACES, replace=False))
        embedded, labels = embedded[kept], [labels[i] for i in kept]
    codes = np.unique(np.asarray(labels), return_inverse=True)[1]
    first, second = np.triu_indices(len(codes), k=1)
    same = codes[first] == codes[second]
    positives, negatives = np.flatnonzero(same), np.flatnonzero(~same)
    expect(len(positives) > 0 and len(negatives) > 0,
           "expected two people with two faces or more to calibrate the thresholds on")
    drawn = rng.choice(negatives, size=min(len(negatives), len(positives)), replace=False)
    pairs = np.concatenate([positives, drawn])
    scores = np.sum(embedded[first[pairs]] * embedded[second[pairs]], axis=1)
    verify, accuracy = best_threshold(scores, same[pairs])
    return {"verify": round(verify, 4),
            "cluster": round(min(verify + CLUSTER_MARGINS[base], 0.99), 4),
            "pairs": len(pairs), "accuracy": round(accuracy, 4)}


def base_graph(base: str) -> tuple[Any, str]:
    """The base face network as an ONNX model, and its embedding output's name."""
    import onnx

    data, output = FACE_BASES[base]()
    return onnx.load_from_string(data), output
