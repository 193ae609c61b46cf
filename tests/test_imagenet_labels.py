"""ImageNet labels from the global model's classifier head: names, top-k, and real models."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from lookalike.errors import ValidationError
from lookalike.extractors.imagenet import NUM_CLASSES, imagenet_classes, softmax, top_classes
from lookalike.extractors.onnx import MODEL_SPECS, OnnxExtractor

CATS = {281, 282, 283, 285, 287}  # tabby, tiger cat, Persian cat, Egyptian cat, lynx
COFFEE = {967, 968}  # espresso, cup


def test_class_names_are_the_standard_thousand() -> None:
    names = imagenet_classes()
    assert len(names) == NUM_CLASSES and all(name == name.strip() != "" for name in names)
    assert names[0] == "tench" and names[1] == "goldfish" and names[999] == "toilet tissue"
    assert (names[281], names[282], names[285], names[967]) == (
        "tabby", "tiger cat", "Egyptian cat", "espresso")
    assert (names[474], names[608], names[610], names[770], names[774]) == (
        "cardigan", "jean", "jersey", "running shoe", "sandal")
    # The source's two repeated names are kept; indices tell the classes apart.
    assert [i for i, name in enumerate(names) if name in {"crane", "maillot"}] == [
        134, 517, 638, 639]
    assert imagenet_classes() is names  # read once


def test_top_classes_orders_filters_and_breaks_ties_by_index() -> None:
    probabilities = np.zeros((2, NUM_CLASSES), dtype=np.float32)
    probabilities[0, [3, 7, 9]] = [0.5, 0.3, 0.2]
    probabilities[1, [10, 4]] = 0.5
    top = top_classes(probabilities, k=2)
    assert [[i for i, _ in row] for row in top] == [[3, 7], [4, 10]]
    index, probability = top[0][0]
    assert isinstance(index, int) and isinstance(probability, float) and probability == 0.5
    assert top_classes(probabilities, k=5, min_probability=0.25) == [
        [(3, 0.5), (7, pytest.approx(0.3))], [(4, 0.5), (10, 0.5)]]
    assert top_classes(probabilities, k=3, min_probability=0.9) == [[], []]
    assert len(top_classes(probabilities, k=NUM_CLASSES)[0]) == NUM_CLASSES


@pytest.mark.parametrize(("probabilities", "params", "message"), [
    (np.zeros(NUM_CLASSES), {}, r"expected a \(n, 1000\) array of probabilities, got \(1000,\)"),
    (np.zeros((2, 10)), {}, r"got \(2, 10\)"),
    ([[0.1] * NUM_CLASSES], {}, "got list"),
    (np.zeros((1, NUM_CLASSES), dtype=np.int64), {}, "expected floating-point"),
    (np.full((1, NUM_CLASSES), np.nan), {}, "expected finite"),
    (np.zeros((1, NUM_CLASSES)), {"k": 0}, "expected k between 1 and 1000, got 0"),
    (np.zeros((1, NUM_CLASSES)), {"k": 1001}, "got 1001"),
    (np.zeros((1, NUM_CLASSES)), {"min_probability": 1.5}, "expected min_probability"),
])
def test_top_classes_rejects_bad_input(
    probabilities: Any, params: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValidationError, match=message):
        top_classes(probabilities, **params)


def test_softmax_is_stable_for_large_scores() -> None:
    logits = np.array([[1000.0, 1000.0, -1000.0], [0.0, np.log(3.0), 0.0]])
    probabilities = softmax(logits)
    assert probabilities.dtype == np.float32 and np.isfinite(probabilities).all()
    np.testing.assert_allclose(probabilities[0], [0.5, 0.5, 0.0], atol=1e-7)
    np.testing.assert_allclose(probabilities[1], [0.2, 0.6, 0.2], atol=1e-6)
    with pytest.raises(ValidationError, match="expected finite scores"):
        softmax(np.array([[np.inf, 0.0]]))


@pytest.fixture(scope="module")
def lite0() -> OnnxExtractor:
    # The global channel's default model, exported once under LOOKALIKE_CACHE.
    pytest.importorskip("torch")
    return OnnxExtractor(MODEL_SPECS["efficientnet-lite0"], batch_size=3)


@pytest.fixture(scope="module")
def samples() -> list[np.ndarray]:
    data = pytest.importorskip("skimage.data")
    return [data.chelsea(), data.coffee(), data.astronaut(), data.rocket()]


def top5(probabilities: np.ndarray) -> list[set[int]]:
    return [{index for index, _ in row} for row in top_classes(probabilities, k=5)]


@pytest.mark.slow
@pytest.mark.parametrize("name", ["efficientnet-lite0", "mobilenetv2"])
def test_classifier_recognises_a_cat_and_a_coffee(name: str, samples: list[np.ndarray]) -> None:
    pytest.importorskip("torch")
    extractor = OnnxExtractor(MODEL_SPECS[name])
    assert extractor.has_classifier
    probabilities = extractor.classify(samples)
    assert probabilities.shape == (4, NUM_CLASSES) and probabilities.dtype == np.float32
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-5)
    assert (probabilities >= 0).all()
    cat, coffee = top5(probabilities)[:2]
    assert cat & CATS, [imagenet_classes()[i] for i in cat]
    assert coffee & COFFEE, [imagenet_classes()[i] for i in coffee]


@pytest.mark.slow
def test_embed_and_classify_matches_embed_and_classify(
    lite0: OnnxExtractor, samples: list[np.ndarray]
) -> None:
    # batch_size=3 splits the four images over two batches.
    vectors, probabilities = lite0.embed_and_classify(samples)
    np.testing.assert_allclose(vectors, lite0.embed(samples), atol=1e-5)
    np.testing.assert_allclose(probabilities, lite0.classify(samples), atol=1e-6)
    assert vectors.dtype == np.float32 and vectors.shape == (4, lite0.info.dim)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, rtol=1e-5)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-5)


@pytest.mark.slow
def test_classify_validates_like_embed(lite0: OnnxExtractor) -> None:
    with pytest.raises(ValidationError, match="expected HxWx3 uint8"):
        lite0.classify([np.zeros((8, 8), dtype=np.uint8)])
    with pytest.raises(ValidationError, match="empty batch"):
        lite0.embed_and_classify([])


class _FeaturesOnlySession:
    """Stands in for an ONNX Runtime session of a model exported without its classifier."""

    class _Output:
        name = "features"

    def get_outputs(self) -> list[Any]:
        return [self._Output()]

    def run(self, names: list[str], feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        if names != ["features"]:
            raise AssertionError(f"asked for {names}")
        batch = feeds["input"]
        return [np.ones((len(batch), 1280), dtype=np.float32)]


class _NoClassifier(OnnxExtractor):
    def _load(self) -> None:
        self._session = _FeaturesOnlySession()


def test_a_model_without_logits_cannot_classify() -> None:
    extractor = _NoClassifier(MODEL_SPECS["mobilenetv2"], batch_size=2)
    image = np.zeros((32, 40, 3), dtype=np.uint8)
    assert not extractor.has_classifier
    assert extractor.embed([image] * 3).shape == (3, 1280)
    with pytest.raises(ValidationError,
                       match="expected a model with an ImageNet classifier head, got mobilenetv2"):
        extractor.classify([image])
    with pytest.raises(ValidationError, match="classifier head"):
        extractor.embed_and_classify([image])
