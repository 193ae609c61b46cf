"""ImageNet-1k class names, and reading the classifier head's output as labels.

The global models were trained to classify the 1000 classes of the ILSVRC-2012
challenge (Russakovsky et al., "ImageNet Large Scale Visual Recognition Challenge",
IJCV 2015); their exported ONNX graphs keep the classifier's ``logits`` beside the
pooled ``features`` (see :mod:`lookalike.extractors.export`). This module turns those
scores into probabilities and into (class index, probability) pairs, and names the
classes.

``imagenet_classes.txt`` lists the classes in the standard index order, one short
name a line, as PyTorch Hub's ``imagenet_classes.txt`` (pytorch/hub) writes them:
the first synonym of each WordNet synset, with underscores as spaces. The list is
kept exactly as the source has it, including its two repeated names: 134 and 517
are both "crane" (the bird and the machine) and 638 and 639 are both "maillot" (a
swimsuit and a leotard). The names are not made unique because nothing keys on
them: :func:`top_classes` returns class indices, which stay unambiguous, and a
label shown to a person reads better as "crane" than as "crane (2)".
"""

from __future__ import annotations

import functools
import importlib.resources

import numpy as np

from lookalike.errors import LookalikeError, ValidationError, expect

NUM_CLASSES = 1000
_CLASSES_FILE = "imagenet_classes.txt"


@functools.cache
def imagenet_classes() -> tuple[str, ...]:
    """The 1000 ImageNet-1k class names; index ``i`` names the classifier's output ``i``."""
    resource = importlib.resources.files("lookalike.extractors").joinpath(_CLASSES_FILE)
    text = resource.read_text(encoding="utf-8")
    names = tuple(text.splitlines())
    if len(names) != NUM_CLASSES or not all(names):
        raise LookalikeError(
            f"expected {NUM_CLASSES} non-empty class names in {_CLASSES_FILE}, "
            f"got {len(names)} lines; the installed package is damaged"
        )
    return names


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax of (n, classes) scores as float32 probabilities.

    Subtracting each row's maximum first keeps ``exp`` from overflowing, whatever the
    scale of the scores; the result is unchanged because softmax ignores a shift.
    """
    scores = np.asarray(logits, dtype=np.float64)
    expect(scores.ndim == 2, f"expected a 2-d (n, classes) array of scores, got {scores.shape}")
    expect(bool(np.isfinite(scores).all()), "expected finite scores, got NaN or infinity")
    exps = np.exp(scores - scores.max(axis=1, keepdims=True))
    probabilities: np.ndarray = (exps / exps.sum(axis=1, keepdims=True)).astype(np.float32)
    return probabilities


def top_classes(
    probabilities: np.ndarray, k: int = 5, min_probability: float = 0.0
) -> list[list[tuple[int, float]]]:
    """The ``k`` likeliest classes of each row, best first, as (class index, probability).

    Classes below ``min_probability`` are left out, so a row may hold fewer than ``k``
    pairs, or none. Equal probabilities keep the lower class index first.
    """
    if not isinstance(probabilities, np.ndarray) or probabilities.ndim != 2 \
            or probabilities.shape[1] != NUM_CLASSES:
        found = getattr(probabilities, "shape", type(probabilities).__name__)
        raise ValidationError(f"expected a (n, {NUM_CLASSES}) array of probabilities, got {found}")
    expect(
        np.issubdtype(probabilities.dtype, np.floating),
        f"expected floating-point probabilities, got {probabilities.dtype}",
    )
    expect(bool(np.isfinite(probabilities).all()),
           "expected finite probabilities, got NaN or infinity")
    expect(
        isinstance(k, int | np.integer) and not isinstance(k, bool) and 1 <= k <= NUM_CLASSES,
        f"expected k between 1 and {NUM_CLASSES}, got {k!r}",
    )
    expect(
        0.0 <= min_probability <= 1.0,
        f"expected min_probability between 0 and 1, got {min_probability!r}",
    )
    # A stable sort of the negated rows: best first, ties in index order.
    order = np.argsort(-probabilities, axis=1, kind="stable")[:, :k]
    return [
        [(int(index), float(row[index])) for index in best if row[index] >= min_probability]
        for row, best in zip(probabilities, order, strict=True)
    ]
